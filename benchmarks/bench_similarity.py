"""Position-similarity maps: the project's lag (Toeplitz) method against the reference's way.

Methods, each *including* building whatever it needs from (n, head_dim, theta):
* ``rotary.position_similarity`` (ours): the similarity of the n lags, laid out as a Toeplitz
  matrix; float64 numpy, cost n*d/2 + n^2.
* ``rotary.position_similarity_per_frame`` (ours, per-frame theta): one (n, d) @ (d, n) matmul.
* broadcast cosine (the reference's picture, the baseline): rotary vectors [cos | sin] (n, d),
  then ``torch.nn.functional.cosine_similarity(v[:, None, :], v[None, :, :], dim=-1)``, which
  materialises n*n*d values (float32, as the reference runs).
* normalised matmul: ``v/|v| @ (v/|v|).T`` in torch float32.

Then the display path the app takes for a 30 s clip: ``rotary.display_similarity`` at <= 512 x
512 -> plotly figure (``workbench.figures.similarity_maps``, or a bare ``go.Heatmap`` when the
workbench is absent) -> ``fig.to_json()``, against the same with the full 3000 x 3000 map, and
plotly's cost of a numpy ``z`` against a list ``z``.
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks import _harness as H
from benchmarks import _signals as S

THETA = 10000.0
BROADCAST_PEAK_FACTOR = 3.1  # measured: torch's cosine_similarity holds ~3 (n, n, d) float32 temps
MEMORY_FRACTION = 0.6  # run a method only if its estimated peak fits in this share of free RAM
DISPLAY_SECONDS, DISPLAY_FRAMES, DISPLAY_HEAD_DIM, DISPLAY_SIZE = 30.0, 3750, 64, 512
FULL_SIZE = 3000


# ----------------------------------------------------------------------------- methods

def _torch_vectors(n: int, d: int):
    import torch

    from echo_core.rotary import inv_freq

    freqs = torch.as_tensor(inv_freq(d, THETA), dtype=torch.float32)
    angles = torch.arange(n, dtype=torch.float32)[:, None] * freqs[None, :]  # (n, d/2)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)  # (n, d)


def _broadcast(n: int, d: int):
    import torch.nn.functional as F

    v = _torch_vectors(n, d)
    return F.cosine_similarity(v[:, None, :], v[None, :, :], dim=-1)  # (n, n) via (n, n, d)


def _matmul(n: int, d: int):
    v = _torch_vectors(n, d)
    vn = v / v.norm(dim=-1, keepdim=True)
    return vn @ vn.T


def _contour(n: int) -> np.ndarray:
    return S.speech_f0_frames(n * 0.008 + 0.01, n)


def make_ours(n: int, d: int):
    from echo_core.rotary import position_similarity

    position_similarity(8, d, THETA)
    return lambda: position_similarity(n, d, THETA)


def make_per_frame(n: int, d: int):
    from echo_core.rotary import position_similarity_per_frame

    f0 = _contour(n)
    position_similarity_per_frame(f0[:8], d, THETA)
    return lambda: position_similarity_per_frame(f0, d, THETA)


def make_broadcast(n: int, d: int):
    _broadcast(8, d)
    return lambda: _broadcast(n, d)


def make_matmul(n: int, d: int):
    _matmul(8, d)
    return lambda: _matmul(n, d)


SIM_METHODS = {  # name -> (factory, baseline, numpy-only)
    "position_similarity (ours, Toeplitz f64)": ("make_ours", False, True),
    "position_similarity_per_frame (ours, matmul f64)": ("make_per_frame", False, True),
    "broadcast cosine_similarity (torch f32)": ("make_broadcast", True, False),
    "normalised matmul (torch f32)": ("make_matmul", False, False),
}


# ----------------------------------------------------------------------------- display path

def _figure(positions: np.ndarray, sim: np.ndarray, label: str):
    try:
        from workbench.figures import similarity_maps
    except ImportError:
        import plotly.graph_objects as go

        z = np.asarray(sim, dtype=np.float32)
        return go.Figure(go.Heatmap(z=z, x=positions, y=positions, zmin=-1, zmax=1))
    return similarity_maps([(label, np.asarray(sim, dtype=np.float32))], positions)


def _display_compute(n: int, f0: np.ndarray, mode: str, size: int):
    from echo_core.rotary import display_similarity

    return display_similarity(n, DISPLAY_HEAD_DIM, THETA, f0=f0, max_size=size,
                              per_frame=mode == "per_frame")


def make_display(stage: str, mode: str = "mean_f0", n: int = DISPLAY_FRAMES,
                 size: int = DISPLAY_SIZE):
    """stage: total (compute -> figure -> JSON), compute, figure, json; or full (n x n map)."""
    from echo_core.rotary import position_similarity

    f0 = _contour(n)
    small = _display_compute(min(n, 64), f0[: min(n, 64)], mode, 16)
    _figure(*small, "warm-up").to_json()  # plotly's validators load lazily on first use
    if stage == "full":
        return lambda: len(_figure(np.arange(n), position_similarity(n, DISPLAY_HEAD_DIM, THETA,
                                                                     f0=f0), "full").to_json())
    if stage == "total":
        return lambda: len(_figure(*_display_compute(n, f0, mode, size), mode).to_json())
    if stage == "compute":
        return lambda: _display_compute(n, f0, mode, size)
    positions, sim = _display_compute(n, f0, mode, size)
    if stage == "figure":
        return lambda: _figure(positions, sim, mode)
    if stage == "json":
        fig = _figure(positions, sim, mode)
        return lambda: len(fig.to_json())
    raise ValueError(f"unknown stage {stage!r}; accepted: total, compute, figure, json, full")


def make_plotly(z_kind: str, n: int):
    """A bare heatmap of an (n, n) float32 map with z as numpy or as nested lists, to JSON."""
    import plotly.graph_objects as go

    from echo_core.rotary import position_similarity

    sim = position_similarity(n, DISPLAY_HEAD_DIM, THETA).astype(np.float32)
    go.Figure(go.Heatmap(z=sim[:4, :4].tolist())).to_json()
    if z_kind == "numpy":
        return lambda: len(go.Figure(go.Heatmap(z=sim)).to_json())
    return lambda: len(go.Figure(go.Heatmap(z=sim.tolist())).to_json())


# ----------------------------------------------------------------------------- groups

def similarity_group(rep: H.Report, args, n: int, d: int, done: dict) -> None:
    group = f"n={n} d={d}"
    runs, skipped = {}, {}
    est = BROADCAST_PEAK_FACTOR * n * n * d * 4 + n * n * 4
    for name, (factory, _, _) in SIM_METHODS.items():
        if factory == "make_broadcast" and est > MEMORY_FRACTION * H.available_bytes():
            skipped[name] = (f"not run: needs ~{est / 2**30:.1f} GB (3 n*n*d float32 temporaries), "
                             f"{H.available_bytes() / 2**30:.1f} GB free")
            continue
        runs[name] = globals()[factory](n=n, d=d)
    timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
    ours = make_ours(n, d)()
    out_mb = ours.nbytes / H.MB
    for name, (factory, baseline, numpy_only) in SIM_METHODS.items():
        extra = {"output_mb": out_mb} if factory == "make_ours" else {}
        if name in skipped:
            guesses = []  # the cost grows as n^2 d: scale the nearest measured sizes
            if (factory, d) in done:
                m, t = done[(factory, d)]
                guesses.append(t * (n / m) ** 2)
            same_n = [(dd, t) for (f, dd), (m, t) in done.items() if f == factory and m == n]
            guesses += [t * d / dd for dd, t in same_n]
            if guesses:  # the smaller guess, so the speed-up claimed is not inflated
                extra["extrapolated_s"] = min(guesses)
                extra["extrapolated_from"] = ", ".join(f"{g:.3g} s" for g in guesses)
            rep.row(group, name, None, baseline=baseline, extra=extra, note=skipped[name])
            continue
        if timing[name].get("seconds"):
            done[(factory, d)] = (n, timing[name]["seconds"])
        if factory != "make_ours" and (n <= 1500 or factory != "make_broadcast"):
            other = globals()[factory](n=n, d=d)()
            other = other.numpy() if hasattr(other, "numpy") else other
            if factory != "make_per_frame":
                extra["max_abs_diff_vs_ours"] = float(np.max(np.abs(other - ours)))
            del other
        memory = H.measure_memory(__name__, factory, {"n": n, "d": d}, args.isolate,
                                  trace=numpy_only)
        if factory == "make_ours" and memory.get("peak_bytes") is not None:
            extra["peak_over_output"] = memory["peak_bytes"] / ours.nbytes
        rep.row(group, name, timing[name], baseline=baseline, memory=memory, extra=extra)


def display_group(rep: H.Report, args, n: int, full: int, size: int) -> str:
    """The display path against the full map; returns the group's name."""
    group = f"display {n * 0.008:g} s clip ({n} frames) -> {size}²"
    cases = {  # name -> (params, baseline)
        f"full {full}² map -> figure -> to_json": (dict(stage="full", n=full), True),
        "display_similarity mean-F0 -> figure -> to_json": (dict(stage="total"), False),
        "display_similarity per-frame -> figure -> to_json":
            (dict(stage="total", mode="per_frame"), False),
        "  stage: display_similarity (mean-F0)": (dict(stage="compute"), False),
        "  stage: display_similarity (per-frame)": (dict(stage="compute", mode="per_frame"),
                                                    False),
        "  stage: figure build": (dict(stage="figure"), False),
        "  stage: fig.to_json()": (dict(stage="json"), False),
    }
    params = {name: {"n": n, "size": size, **p} for name, (p, _) in cases.items()}
    params[next(iter(cases))]["n"] = full
    runs = {name: make_display(**p) for name, p in params.items()}
    timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
    for name, (_, baseline) in cases.items():
        extra = {}
        if params[name]["stage"] in ("total", "full"):
            extra["json_mb"] = runs[name]() / H.MB
        memory = H.measure_memory(__name__, "make_display", params[name], args.isolate)
        rep.row(group, name, timing[name], baseline=baseline, memory=memory, extra=extra)
    try:
        import workbench.figures  # noqa: F401

        rep.note("display figures built with workbench.figures.similarity_maps")
    except ImportError:
        rep.note("workbench.figures not importable: display figures are a bare go.Heatmap")
    return group


def plotly_group(rep: H.Report, args, n: int) -> None:
    group = f"plotly heatmap {n}² -> to_json"
    names = {"z as nested lists (sim.tolist())": "list", "z as numpy float32": "numpy"}
    runs = {name: make_plotly(kind, n) for name, kind in names.items()}
    timing = H.time_methods(runs, args.repeat, args.budget, args.quick)
    for name, kind in names.items():
        memory = H.measure_memory(__name__, "make_plotly", {"z_kind": kind, "n": n}, args.isolate)
        rep.row(group, name, timing[name], baseline=kind == "list", memory=memory,
                extra={"json_mb": runs[name]() / H.MB})


# ----------------------------------------------------------------------------- targets

def _by(rep, group, prefix):
    return next((r for r in rep.rows if r["group"] == group and r["method"].startswith(prefix)),
                None)


def targets(rep: H.Report, sizes, dims, display_group_name: str) -> None:
    n = max(sizes)
    for d in dims:
        group = f"n={n} d={d}"
        ours, base = _by(rep, group, "position_similarity (ours"), _by(rep, group, "broadcast")
        if base["seconds"] is None and base["extra"].get("extrapolated_s"):
            speed, how = base["extra"]["extrapolated_s"] / ours["seconds"], " (baseline extrapolated)"
        elif base["seconds"]:
            speed, how = base["seconds"] / ours["seconds"], ""
        else:
            speed, how = None, ""
        rep.target(f"similarity n={n} d={d}: ours vs broadcast", ">= 100× faster",
                   "-" if speed is None else f"{speed:,.0f}× faster{how}",
                   None if speed is None else speed >= 100)
        ratio = ours["extra"].get("peak_over_output")
        rep.target(f"similarity n={n} d={d}: ours peak memory", "<= 2× output",
                   "-" if ratio is None else f"{ratio:.2f}× output ({ours['peak_mb']:.0f} MB)",
                   None if ratio is None else ratio <= 2.0)
    for prefix, label in (("display_similarity mean-F0", "mean-F0"),
                          ("display_similarity per-frame", "per-frame")):
        row = _by(rep, display_group_name, prefix)
        rep.target(f"display path 30 s -> figure JSON ({label})", "<= 50 ms",
                   H.fmt_seconds(row["seconds"]), row["seconds"] <= 0.050)


def main(argv=None) -> dict:
    args = H.parse_args(__doc__.splitlines()[0], argv)
    rep = H.Report("similarity", "Similarity maps: time and peak memory", args)
    if args.quick:
        sizes, dims, n_display, full, size = (64,), (16,), 400, 200, 64
    else:
        sizes, dims = (500, 1500, 3000), (64, 128)
        n_display, full, size = DISPLAY_FRAMES, FULL_SIZE, DISPLAY_SIZE
    done: dict = {}
    for d in dims:
        for n in sizes:
            similarity_group(rep, args, n, d, done)
    display = display_group(rep, args, n_display, full, size)
    plotly_group(rep, args, size)
    plotly_group(rep, args, full)
    targets(rep, sizes, dims, display)
    rep.note("ratio = time / baseline time in the same group (1/500 = 500× faster). Peak MB: "
             "RSS high-water mark above the starting RSS, one call in a fresh subprocess "
             "(traced_mb: tracemalloc, numpy paths). Ours returns float64 (8 bytes per cell), "
             "the torch methods float32.")
    rep.note("The broadcast baseline is skipped when its ~3 n*n*d float32 temporaries would not "
             "fit in 60 % of the free RAM (n=3000, d=128 needs ~13 GB); its time is then "
             "extrapolated (cost ~ n^2 d) from the same d at smaller n and from the same n at "
             "smaller d; the smaller estimate is used and labelled so.")
    return rep.finish()


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
