"""Analysing a clip with a checkpoint: time per stage, end to end, and transcription speed.

For each shipped checkpoint (else a freshly initialised Echo of similar size, labelled so) and
10 s / 30 s of looped example speech:

* stages: log-mel features, F0 (Praat + alignment to the mel frames), a plain forward pass
  (``torch.no_grad``, 20-token prefix; the baseline), forward under ``capture("stats")`` plus
  the statistics tables (gate/MLP ratios, activation component statistics), and the Model
  view's figures serialised to JSON;
* "analysis": all of those end to end from raw samples, the target's definition;
* the app's own ``workbench.model_analysis.run_model`` (the model's transcript, then one teacher-forced
  forward + backward under ``capture("full", gradients=True)``, tables), plus its figures, with
  a new clip before every call (one sample nudged, so no cache answers);
* ``echo_core.clip_run.transcribe`` (greedy, or joint for a model with a CTC head): its
  real-time factor.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from benchmarks import _harness as H
from benchmarks import _models as M
from benchmarks import _signals as S

STAGES = {  # method label -> (stage, baseline)
    "forward (no_grad)": ("forward", True),
    "forward (no_grad), torch's default thread count": ("forward_default", False),
    "  stage: log-mel features": ("features", False),
    "  stage: F0 (Praat + align)": ("f0", False),
    "  stage: forward + statistics (capture stats)": ("statistics", False),
    "  stage: figures -> JSON": ("figures", False),
    "analysis: features+F0+forward+statistics+figures": ("analysis", False),
    "app: workbench.model_analysis.run_model + figures": ("app", False),
    "transcribe (greedy decode)": ("transcribe", False),
}


def _features(model, x):
    from echo_core.audio import log_mel
    from echo_core.decode import feature_settings

    s = feature_settings(model)
    return log_mel(x, S.SR, n_mels=int(s["n_mels"]), fmin=float(s["fmin"]), fmax=s["fmax"])


def _f0(x, n_frames):
    from echo_core.pitch import align_to_frames, extract_f0, f0_for_model

    return f0_for_model(align_to_frames(extract_f0(x, S.SR), n_frames))


def _statistics(model, kwargs):
    import torch

    from echo_core.hooks import capture, component_statistics, gate_mlp_ratios

    with torch.no_grad(), capture(model, depth="stats") as cache:
        model(**kwargs)
    return gate_mlp_ratios(cache), component_statistics(cache, "activations")


def _gate_figure_json(gates) -> int:
    from workbench import figures_model as FM

    expected = float(gates["init_expected_ratio"].iloc[0]) if len(gates) else None
    return len(FM.gate_ratio_bars(gates["block"], gates["ratio"], gates["status"],
                                 expected).to_json())


def _analysis(model, x, ids):
    """Features and F0 through the pipeline (clip_run), a stats capture, the gate figure."""
    from echo_core.clip_run import clip_features, model_inputs

    mel, f0_frames = clip_features(model, x, S.SR)
    kwargs = model_inputs(model, mel, f0_frames, ids[0, 1:].tolist())  # ids without bos
    kwargs.pop("labels")
    gates, _ = _statistics(model, kwargs)
    return _gate_figure_json(gates)


USE_UI = True  # --quick turns it off: importing workbench.ui.model_views imports gradio (~3 s)


def _app_figures_json(result) -> int:
    """The Model view's figures as the app draws them (workbench.ui.model_views.model_figures)
    in JSON."""
    try:
        if not USE_UI:
            raise ImportError("--quick: gradio not imported")
        from workbench.ui.model_views import model_figures
    except Exception:  # noqa: BLE001 (no ui yet: the gate figure alone)
        return _gate_figure_json(result.gates)
    from workbench.model_analysis import ATTENTION_KINDS

    figs = model_figures(result, ATTENTION_KINDS[0], 1, 0, "scores")  # encoder layers from 1
    return sum(len(f.to_json()) for f in figs.values())


def _app_checkpoint_id(name: str) -> str:
    from workbench.checkpoints import register_checkpoint

    if not name.startswith(M.FRESH):
        return f"shipped/{name}"
    return register_checkpoint(M.path(name), M.label(name))


def make_stage(name: str, seconds: float, stage: str):
    """Factory: model, audio and precomputed inputs; returns the timed call (warmed up).

    For "app" it returns a _WithPrepare: prepare registers a new clip (untimed) so every call
    analyses the clip afresh.
    """
    import torch

    M.app_threads(False)
    model, x = M.load(name), S.real_speech(float(seconds))
    kwargs = M.inputs(name, seconds)
    short = S.real_speech(1.0)
    if stage == "forward":
        def call():
            with torch.no_grad():
                return model(**kwargs)["logits"]
    elif stage == "forward_default":
        def call():
            threads = torch.get_num_threads()
            torch.set_num_threads(M.torch_default_threads())
            try:
                with torch.no_grad():
                    return model(**kwargs)["logits"]
            finally:
                torch.set_num_threads(threads)
    elif stage == "features":
        def call():
            return _features(model, x)
    elif stage == "f0":
        n_frames = kwargs["spectrogram"].shape[-1]

        def call():
            return _f0(x, n_frames)
    elif stage == "statistics":
        def call():
            return _statistics(model, kwargs)
    elif stage == "figures":
        from workbench import analysis as A
        from workbench.model_analysis import run_model

        clip = A.clip_from_array(S.SR, x, f"bench {seconds:g} s")
        result = run_model(clip, None, _app_checkpoint_id(name))

        def call():
            return _app_figures_json(result)
    elif stage == "analysis":
        _analysis(model, short, kwargs["input_ids"])

        def call():
            return _analysis(model, x, kwargs["input_ids"])
    elif stage == "app":
        from workbench import analysis as A
        from workbench.model_analysis import run_model

        checkpoint = _app_checkpoint_id(name)
        _app_figures_json(run_model(A.clip_from_array(S.SR, short, "warm-up"), None, checkpoint))
        fresh = {"clip": None, "count": 0}

        def prepare():
            # A new clip each call (one sample nudged: a new content key), registered untimed
            # as the upload does, so no feature or result cache can answer for run_model.
            fresh["count"] += 1
            y = np.array(x, dtype=np.float32)
            y[0] += np.float32(1e-4 * fresh["count"])
            fresh["clip"] = A.clip_from_array(S.SR, y, f"bench {seconds:g} s")

        def call():
            return _app_figures_json(run_model(fresh["clip"], None, checkpoint))

        prepare()
        call()  # once at full length, untimed: a clip the workbench refuses fails here
        return _WithPrepare(call, prepare)
    elif stage == "transcribe":
        from echo_core.clip_run import transcribe
        from echo_core.tokenizer import CharTokenizer

        tokenizer = None if not name.startswith(M.FRESH) else CharTokenizer()
        transcribe(model, short, S.SR, tokenizer)

        def call():
            return transcribe(model, x, S.SR, tokenizer)
    else:
        raise ValueError(f"unknown stage {stage!r}; accepted: {[s for s, _ in STAGES.values()]}")
    call()
    return call


class _WithPrepare:
    """A timed call with an untimed set-up before each call (time_methods' ``prepare``)."""

    def __init__(self, call, prepare):
        self.call, self.prepare = call, prepare

    def __call__(self):
        self.prepare()
        return self.call()


def run_group(rep: H.Report, args, name: str, seconds: float) -> None:
    group = f"{M.label(name)}, {seconds:g} s"
    runs, prepare, refused = {}, {}, {}
    for method, (stage, _) in STAGES.items():
        try:
            fn = make_stage(name, seconds, stage)
        except ValueError as e:  # the workbench refusing the input (e.g. its length limit)
            refused[method] = f"not run: {type(e).__name__}: {e}"
            continue
        except Exception as e:  # noqa: BLE001 (a bug in the workbench must not sink the report)
            if stage not in ("figures", "app"):
                raise
            refused[method] = f"failed in workbench: {type(e).__name__}: {e}"
            continue
        H.progress(f"{group}: {method.strip()} ready")
        if isinstance(fn, _WithPrepare):
            runs[method], prepare[method] = fn.call, fn.prepare
        else:
            runs[method] = fn
    timing = H.time_methods(runs, args.repeat, args.budget, args.quick, prepare=prepare)
    for method, (stage, baseline) in STAGES.items():
        if method not in runs:
            rep.row(group, method, None, note=refused.get(method) or "not run")
            continue
        if "error" in timing[method]:
            rep.row(group, method, timing[method], baseline=baseline)
            continue
        extra = {}
        if stage == "transcribe":
            extra["rtf"] = timing[method].get("seconds", math.nan) / seconds
            extra["text"] = repr(runs[method]()[:40])
        if stage in ("analysis", "app"):
            extra["rtf"] = timing[method].get("seconds", math.nan) / seconds
        memory = H.measure_memory(__name__, "make_stage", {"name": name, "seconds": seconds,
                                                           "stage": stage}, args.isolate)
        rep.row(group, method, timing[method], baseline=baseline, memory=memory, extra=extra)


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("model", "Clip analysis and transcription per checkpoint", args)
    rep.note(M.app_threads(args.quick))
    global USE_UI
    USE_UI = not args.quick
    models = M.names(args.quick, every=True)
    for name in models:
        for seconds in ((1.0,) if args.quick else (10.0, 30.0)):
            run_group(rep, args, name, seconds)
    for row in rep.to_dict()["rows"]:
        if row["seconds"] is None or not row["group"].endswith(", 10 s"):
            continue
        if row["method"].startswith(("analysis:", "app:")):
            rep.target(f"10 s analysis ≤ 1 s: {row['method'].split(':')[0]} ({row['group']})",
                       "<= 1 s", H.fmt_seconds(row["seconds"]), row["seconds"] <= 1.0)
    rep.note("Memory of the app path includes loading the checkpoint and the workbench's caches.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
