"""Which model the model benchmarks run: the shipped checkpoints, or a tiny fresh one for --quick.

Shared by bench_hooks, bench_head_scores and bench_model. A broken library is an error here, not
a skip: nothing catches an import failure. The --quick model is a seeded, freshly initialised
Echo saved as a real checkpoint folder (config, weights, tokenizer) in the temp directory, so
every path (load_checkpoint, the app's run_model, transcribe) runs exactly as for a shipped one;
its label says "random weights".
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from functools import lru_cache
from pathlib import Path

from benchmarks import _signals as S

CHECKPOINTS_DIR = S.REPO / "assets" / "checkpoints"
FRESH = "fresh-init"  # name of the --quick model (random weights, NOT a trained checkpoint)
# The shipped digit models' dims (assets/checkpoints/*/config.json), shrunk for --quick.
FRESH_DIMS = dict(vocab=29, text_ctx=64, text_dims=128, text_head=4, text_idx=2, mels=80,
                  aud_ctx=640, aud_dims=128, aud_head=4, aud_idx=2, f0_rotary=True,
                  decoder_mask="causal")
QUICK_DIMS = dict(FRESH_DIMS, text_ctx=8, text_dims=32, aud_dims=32, text_head=2, aud_head=2,
                  text_idx=1, aud_idx=1, mels=32)
TOKENS = 20  # decoder prefix length used for forward passes


@lru_cache(maxsize=1)
def torch_default_threads() -> int:
    """torch's own intra-op thread count, read before anything here changes it."""
    import torch

    return torch.get_num_threads()


def app_threads(quick: bool) -> str:
    """Use the torch thread count the app uses for model runs; returns a note saying which.

    workbench.model_analysis.MODEL_THREADS (1 at the time of writing): on two cores shared with
    training, a second intra-op thread mostly waits for a core, and a forward pass ran up to
    14x slower with 2 threads than with 1 here. --quick always uses 1 thread.
    """
    import torch

    default = torch_default_threads()
    threads = 1 if quick else default
    source = "--quick" if quick else "torch default"
    if not quick:
        try:
            from workbench.model_analysis import MODEL_THREADS

            threads = int(MODEL_THREADS)
            source = "workbench.model_analysis.MODEL_THREADS, as the app"
        except Exception:  # noqa: BLE001 (no workbench yet: torch's default)
            pass
    torch.set_num_threads(threads)
    return f"torch intra-op threads: {threads} ({source}; torch's default here is {default})"



def shipped() -> list[str]:
    """Names of the checkpoint folders in assets/checkpoints (config.json + weights)."""
    if not CHECKPOINTS_DIR.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS_DIR.iterdir()
                  if p.is_dir() and (p / "config.json").is_file()
                  and any(p.glob("*.safetensors")))


def names(quick: bool, every: bool) -> list[str]:
    """The models to run: all (or the first) shipped checkpoints; the tiny fresh one if quick."""
    if quick:
        return [FRESH + "-quick"]
    found = shipped()
    if not found:
        raise FileNotFoundError(f"no checkpoint folders in {CHECKPOINTS_DIR}: the benchmarks "
                                "measure the shipped models")
    return found if every else found[:1]


def path(name: str) -> Path:
    """The checkpoint folder of a model name (creating the fresh fallback on first use)."""
    if not name.startswith(FRESH):
        return CHECKPOINTS_DIR / name
    dims = QUICK_DIMS if name.endswith("quick") else FRESH_DIMS
    tag = hashlib.sha1(json.dumps(dims, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(tempfile.gettempdir()) / f"echo-bench-{name}-{tag}"
    if not (folder / "config.json").is_file():
        import torch

        from echo_core.checkpoint import save_checkpoint
        from echo_core.model import Echo
        from echo_core.model_dims import EchoDims
        from echo_core.tokenizer import CharTokenizer

        torch.manual_seed(0)
        model = Echo(EchoDims(**dims))
        meta = {"features": {"n_mels": dims["mels"], "fmin": 0.0, "fmax": 8000.0},
                "tokenizer": "tokenizer.json", "note": "random weights (benchmark fallback)"}
        staging = folder.with_name(folder.name + ".tmp")
        save_checkpoint(model, staging, meta=meta)
        CharTokenizer().save(staging)
        staging.replace(folder) if not folder.exists() else None
    return folder


@lru_cache(maxsize=4)
def load(name: str):
    """Echo in eval mode (via load_checkpoint, for shipped and fallback models alike)."""
    from echo_core.checkpoint import load_checkpoint

    return load_checkpoint(path(name))


def label(name: str) -> str:
    return f"{name} (random weights, --quick)" if name.startswith(FRESH) else name


@lru_cache(maxsize=8)
def inputs(name: str, seconds: float) -> dict:
    """Echo.forward keyword arguments for ``seconds`` of looped example speech."""
    import torch

    from echo_core.clip_run import clip_features, model_inputs

    model = load(name)
    mel, f0_frames = clip_features(model, S.real_speech(float(seconds)), S.SR)
    generator = torch.Generator().manual_seed(0)
    length = min(TOKENS, model.dims.text_ctx) - 1  # bos comes first
    ids = torch.randint(3, model.dims.vocab, (length,), generator=generator).tolist()
    inputs = model_inputs(model, mel, f0_frames, ids)
    inputs.pop("labels")
    return inputs


def forward(name: str, seconds: float, depth: str | None):
    """One forward pass, optionally inside capture(); returns the cache (or the logits)."""
    import torch

    from echo_core.hooks import capture

    model, kwargs = load(name), inputs(name, seconds)
    with torch.no_grad():
        if depth is None:
            return model(**kwargs)["logits"]
        with capture(model, depth=depth) as cache:
            model(**kwargs)
        return cache
