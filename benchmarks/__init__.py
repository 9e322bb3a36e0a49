"""Side-by-side performance comparisons of the workbench's hot paths (issue #6).

``python -m benchmarks.run_all`` (``make benchmarks``) runs each comparison module in its own
process and prints one table; ``benchmarks/RESULTS.md`` holds the latest numbers and what they
mean. Modules: bench_f0 (F0 trackers), bench_similarity (position-similarity maps and the
display path), bench_hooks (hook capture overhead), bench_model (clip analysis, transcription),
bench_app (Gradio cold start, slider update over HTTP); _harness (timing, memory, reports),
_signals (test signals), _models (which model to run).
"""
