"""Cost of looking inside the model: plain forward vs ``hooks.capture`` at "stats" and "full".

One Echo forward pass (encoder + decoder on a 20-token prefix, ``torch.no_grad``) on 10 s and
30 s of looped example speech, with no hooks (the baseline), inside ``capture(model, "stats")``
(per-module output statistics) and inside ``capture(model, "full")`` (also every attention
map, up to the capture's byte budget). Entering and leaving the context (registering and
removing the hooks) is part of the timed call, as it is in the app. The model is the first
shipped checkpoint (assets/checkpoints), else a freshly initialised Echo of similar size,
labelled so.
"""

from __future__ import annotations

import sys

from benchmarks import _harness as H
from benchmarks import _models as M

DEPTHS = {"plain forward": None, "capture stats": "stats", "capture full": "full"}


def make_forward(name: str, seconds: float, depth: str | None):
    """Factory: load the model and inputs, warm up on 1 s, return the timed call."""
    M.app_threads(False)
    M.forward(name, 1.0, depth)
    M.inputs(name, seconds)
    return lambda: M.forward(name, seconds, depth)


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("hooks", "Hook capture overhead", args)
    rep.note(M.app_threads(args.quick))
    name = M.names(args.quick, every=False)[0]
    rep.note(f"model: {M.label(name)}")
    for seconds in ((1.0,) if args.quick else (10.0, 30.0)):
        group = f"{seconds:g} s, {M.label(name)}"
        runs = {method: make_forward(name, seconds, depth) for method, depth in DEPTHS.items()}
        timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
        for method, depth in DEPTHS.items():
            extra = {}
            if depth is not None:
                cache = runs[method]()
                extra.update(modules=len(cache.stats),
                             attention_maps=sum(len(v) for v in cache.attention.values()),
                             attention_mb=cache.attention_bytes / H.MB,
                             maps_dropped=len(cache.dropped))
                del cache
            memory = H.measure_memory(__name__, "make_forward",
                                      {"name": name, "seconds": seconds, "depth": depth},
                                      args.isolate)
            rep.row(group, method, timing[method], baseline=depth is None, memory=memory,
                    extra=extra)
    for row in rep.to_dict()["rows"]:
        if row["method"] == "capture stats" and row["ratio"] is not None:
            overhead = row["ratio"] - 1
            rep.target(f"hooks: stats capture overhead ({row['group']})", "<= 10 %",
                       f"{100 * overhead:+.1f} %", overhead <= 0.10)
    rep.note("Full capture keeps attention maps only up to hooks.DEFAULT_MAX_ATTENTION_BYTES "
             "(later ones are listed as dropped), which bounds its memory at 30 s.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
