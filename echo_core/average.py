"""Average the weights of checkpoints fine-tuned from one another (a "model soup").

    python -m echo_core.average --out runs/soup runs/stage9 runs/stage8

Why: two stages of one training (the later fine-tuned from the earlier) lie in one basin of
the loss, and the mean of their weights often keeps what each learned (Izmailov et al. 2018,
"Averaging weights leads to wider optima"; Wortsman et al. 2022, "Model soups"). It costs no
training. Only checkpoints with the same dims average (training-only fields such as dropout
aside): the result is an ordinary checkpoint (its dims and meta are the first one's, plus
``averaged_from``), and the tokenizer is the first's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from echo_core.checkpoint import load_checkpoint, save_checkpoint
from echo_core.errors import CheckpointError, EchoError
from echo_core.model_dims import TRAINING_ONLY_FIELDS
from echo_core.tokenizer import TOKENIZER_FILE


def average_state(states: list[dict], weights: list[float]) -> dict:
    """The weighted mean of state dicts with the same keys and shapes, computed in float64 and
    stored in each tensor's own dtype; non-float tensors (counters, masks) must agree and are
    copied."""
    if not states or len(states) != len(weights):
        raise CheckpointError(f"need one weight per state dict, got {len(states)} states and "
                              f"{len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"weights must be >= 0 with a positive sum, got {weights}")
    keys = set(states[0])
    for s in states[1:]:
        if set(s) != keys:
            raise CheckpointError(f"checkpoints differ in parameters: "
                                  f"{sorted(keys ^ set(s))[:5]}")
    total = float(sum(weights))
    out = {}
    for k, first in states[0].items():
        if any(s[k].shape != first.shape for s in states):
            raise CheckpointError(f"{k}: shapes differ ({[tuple(s[k].shape) for s in states]})")
        if first.is_floating_point():
            mean = sum(w * s[k].double() for w, s in zip(weights, states)) / total
            out[k] = mean.to(first.dtype)
        elif all(torch.equal(s[k], first) for s in states):
            out[k] = first.clone()
        else:
            raise CheckpointError(f"{k}: non-float tensors differ, so they cannot be averaged")
    return out


def average_checkpoints(folders: list, out, weights: list[float] | None = None) -> Path:
    """Write the weighted mean of the checkpoints in ``folders`` (equal weights by default) to
    ``out``; CheckpointError when their dims differ."""
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise CheckpointError("averaging needs at least two checkpoints")
    weights = list(weights) if weights is not None else [1.0] * len(folders)
    models = [load_checkpoint(f) for f in folders]

    def compared(model):  # training-only fields (dropout) may differ: the weights still mix
        return {k: v for k, v in model.dims.to_dict().items() if k not in TRAINING_ONLY_FIELDS}

    dims = compared(models[0])
    for f, m in zip(folders[1:], models[1:]):
        theirs = compared(m)
        if theirs != dims:
            different = sorted(k for k in dims if theirs.get(k) != dims[k])
            raise CheckpointError(f"{f.name} has other dims than {folders[0].name}: {different}")
    model = models[0]
    model.load_state_dict(average_state([m.state_dict() for m in models], weights))
    meta = dict(model.meta)
    meta["averaged_from"] = [{"checkpoint": f.name, "weight": w} for f, w in zip(folders, weights)]
    out = save_checkpoint(model, out, meta=meta)
    tokenizer = folders[0] / TOKENIZER_FILE
    if tokenizer.exists():
        shutil.copy(tokenizer, Path(out) / TOKENIZER_FILE)
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders (the first gives meta "
                                                       "and tokenizer)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", default="",
                        help="comma-separated, one per checkpoint (default: equal)")
    args = parser.parse_args(argv)
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        parser.error(f"--weights must be numbers separated by commas, got {args.weights!r}")
    try:
        print(average_checkpoints(args.checkpoints, args.out, weights))
    except EchoError as e:  # a missing folder, other dims: the message says which
        parser.exit(2, f"{parser.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
