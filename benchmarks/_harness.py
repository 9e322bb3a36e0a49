"""Measuring code shared by every comparison: timing, peak memory, reports, the results table.

How things are measured (the same for every module):

* **Time**: the methods of one comparison are set up in the *same* process, warmed up (each
  factory runs its method once at a tiny size, so imports, JIT compilation and plotly's lazy
  validators are paid before timing), then timed **round-robin** (A B C, A B C, ...) with
  ``time.perf_counter``: background load (the CPUs are shared with model training) then hits
  every method alike, which keeps the *ratios* meaningful even when absolute times drift. A
  sample is ``number`` back-to-back calls (``number`` grows until a sample lasts >= 50 ms, as
  ``timeit`` does), the reported time is the median over rounds of time per call. Rounds stop at
  ``repeat`` or once the comparison's time budget is spent (at least one round always runs).
* **Peak memory**: each method runs once more in a **fresh subprocess** (``python -m
  benchmarks._harness memory ...``), so nothing earlier in the run (freed arrays kept by the
  allocator, other methods' caches) hides or inflates it. Linux's peak-RSS counter is reset
  (``/proc/self/clear_refs`` <- 5) right before the call and read after it (``VmHWM``); the
  number is peak RSS minus RSS just before the call: every allocation, numpy, torch or C++
  (Praat), including the result while it is alive. For pure-numpy methods tracemalloc's peak
  (numpy reports its buffers to it) is recorded too, as ``traced_mb``. In ``--quick`` mode the
  memory call runs in-process (same counter), which is enough to check the code paths.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
RESULT_MARK = "@@BENCH@@ "  # prefix of the one stdout line a worker answers with
MIN_SAMPLE_SECONDS = 0.05
MAX_NUMBER = 1000
MAX_SAMPLES_PER_ROUND = 10
MB = 2**20


# ----------------------------------------------------------------------------- command line

def parse_args(description: str, argv=None) -> argparse.Namespace:
    """The options every bench module takes (run_all passes them through)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, one round, memory in-process: checks the code runs")
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    p.add_argument("--repeat", type=int, default=None, help="timing rounds (median of these)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of timing per comparison group before rounds stop early")
    p.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto",
                   help="peak memory in a fresh subprocess per method (auto: not with --quick)")
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.budget is None:
        args.budget = 5.0 if args.quick else 60.0
    args.isolate = (not args.quick) if args.isolate == "auto" else args.isolate == "yes"
    oom_first()
    return args


def oom_first() -> None:
    """Volunteer this process as the kernel's first out-of-memory victim: a benchmark that
    overshoots must never take the model training or another helper's work down with it."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


# ----------------------------------------------------------------------------- timing

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """A progress line on stderr (run_all keeps stdout for the tables)."""
    print(f"[{time.perf_counter() - _T0:7.1f} s] {message}", file=sys.stderr, flush=True)


def _sample(fn: Callable, number: int, prepare: Callable | None) -> float:
    """Seconds for ``number`` calls (``prepare`` runs before each call, untimed)."""
    if prepare is None:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return time.perf_counter() - start
    total = 0.0
    for _ in range(number):
        prepare()
        start = time.perf_counter()
        fn()
        total += time.perf_counter() - start
    return total


def time_methods(methods: dict[str, Callable], repeat: int = 5, budget: float = 60.0,
                 quick: bool = False, prepare: dict[str, Callable] | None = None,
                 min_sample: float = MIN_SAMPLE_SECONDS) -> dict[str, dict]:
    """Median seconds per call of each method, timed round-robin (see the module docstring).

    The calibration sample that picks ``number`` counts as the first sample (factories have
    already warmed their method up at a tiny size). So that a method 1000x faster than the
    slowest one still gets enough samples for a stable median, each round takes up to
    ``MAX_SAMPLES_PER_ROUND`` samples of the fast methods (about a fifth of the slowest
    method's sample time each), interleaved with the slow ones.
    """
    prepare = prepare or {}
    numbers, samples, sample_seconds = {}, {name: [] for name in methods}, {}
    failed: dict[str, dict] = {}
    start = time.perf_counter()
    for name, fn in list(methods.items()):
        number = 1
        while True:
            try:
                seconds = _sample(fn, number, prepare.get(name))
            except Exception as e:  # noqa: BLE001 (reported in the row, the others go on)
                failed[name] = {"error": f"{type(e).__name__}: {e}"}
                break
            if quick or seconds >= min_sample or number >= MAX_NUMBER:
                break
            number = min(MAX_NUMBER, max(2 * number, math.ceil(1.2 * number * min_sample /
                                                               max(seconds, 1e-7))))
        if name in failed:
            methods = {k: v for k, v in methods.items() if k != name}
            continue
        numbers[name], sample_seconds[name] = number, max(seconds, 1e-9)
        samples[name].append(seconds / number)
    slowest = max(sample_seconds.values(), default=0.0)
    per_round = {name: 1 if quick else
                 int(min(MAX_SAMPLES_PER_ROUND, max(1, round(0.2 * slowest / s))))
                 for name, s in sample_seconds.items()}
    for _ in range(1, repeat):
        if time.perf_counter() - start > budget:
            break
        for name, fn in methods.items():
            for _ in range(per_round[name]):
                samples[name].append(_sample(fn, numbers[name], prepare.get(name))
                                     / numbers[name])
    return {**failed, **{name: {"seconds": statistics.median(s), "runs": len(s),
                                "number": numbers[name], "min_s": min(s), "max_s": max(s)}
                         for name, s in samples.items() if s}}


# ----------------------------------------------------------------------------- memory

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def current_rss() -> int:
    """Resident set size of this process, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _trim() -> None:
    """Collect garbage and hand free heap pages back to the OS (glibc ``malloc_trim``), so a
    method cannot reuse memory freed by the set-up without it showing in the RSS."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_during(fn: Callable) -> tuple[Any, int, str]:
    """(result, peak RSS above the starting RSS in bytes, how it was measured)."""
    _trim()
    before = current_rss()
    if _reset_peak():
        out = fn()
        return out, max(0, _status_kb("VmHWM") * 1024 - before), "rss-hwm"
    peak, done = [before], threading.Event()  # fallback: sample RSS every millisecond

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], current_rss())
            time.sleep(0.001)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        out = fn()
    finally:
        done.set()
        thread.join()
    return out, max(0, max(peak[0], current_rss()) - before), "rss-poll"


def traced_peak(fn: Callable) -> int:
    """Peak bytes tracemalloc saw during one call (Python objects and numpy buffers only)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del out
    finally:
        tracemalloc.stop()
    return peak


def _memory_here(module: str, factory: str, params: dict, trace: bool) -> dict:
    fn = getattr(importlib.import_module(module), factory)(**params)
    out, peak, how = peak_during(fn)
    del out
    result = {"peak_bytes": peak, "mem_method": how}
    if trace:
        result["traced_bytes"] = traced_peak(fn)
    return result


def measure_memory(module: str, factory: str, params: dict, isolate: bool, trace: bool = False,
                   timeout: float = 900.0) -> dict:
    """Peak memory of one call of ``module.factory(**params)()``, in a fresh process if isolate.

    Never raises: a failure comes back as {"error": ...} so one method cannot sink a report.
    """
    if module == "__main__":  # a bench module run with -m: name it so a worker can import it
        module = sys.modules["__main__"].__spec__.name
    if not isolate:
        try:
            result = _memory_here(module, factory, params, trace)
        except Exception as e:  # noqa: BLE001 (reported, not hidden)
            return {"error": f"{type(e).__name__}: {e}"}
        result["mem_method"] += " (in-process)"
        return result
    cmd = [sys.executable, "-m", "benchmarks._harness", "memory", module, factory,
           json.dumps(params)] + (["--trace"] if trace else [])
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        return {"error": f"memory worker timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"memory worker exited {proc.returncode}: {' | '.join(tail)}"}


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ----------------------------------------------------------------------------- reports

class Report:
    """Rows, targets and notes of one comparison module, written as one JSON document."""

    def __init__(self, name: str, title: str, args: argparse.Namespace):
        self.name, self.title, self.args = name, title, args
        self.rows: list[dict] = []
        self.targets: list[dict] = []
        self.notes: list[str] = []
        self.status, self.reason = "ok", None
        self.started = time.perf_counter()

    def row(self, group: str, method: str, timing: dict | None = None, *, baseline: bool = False,
            memory: dict | None = None, extra: dict | None = None, note: str | None = None) -> dict:
        """One measured method. ``timing`` from time_methods, ``memory`` from measure_memory."""
        timing, memory = timing or {}, memory or {}
        if timing.get("error"):
            note = f"failed: {timing['error']}" + (f"; {note}" if note else "")
        row = {
            "comparison": self.name, "group": group, "method": method,
            "seconds": timing.get("seconds"), "runs": timing.get("runs"),
            "number": timing.get("number"), "min_s": timing.get("min_s"),
            "max_s": timing.get("max_s"), "baseline": baseline, "ratio": None,
            "peak_mb": None if memory.get("peak_bytes") is None else memory["peak_bytes"] / MB,
            "traced_mb": None if memory.get("traced_bytes") is None else
            memory["traced_bytes"] / MB,
            "mem_method": memory.get("mem_method"), "mem_error": memory.get("error"),
            "extra": extra or {}, "note": note,
        }
        self.rows.append(row)
        progress(f"{self.name} | {group} | {method.strip()}: {fmt_seconds(row['seconds'])}")
        return row

    def target(self, name: str, goal: str, value: str, met: bool | None, why: str = "") -> None:
        """A target from the issue: met True/False, or None when it could not be measured.

        In --quick mode the sizes are not the target's, so ``met`` is recorded as None."""
        if self.args.quick:
            value, met = f"{value} (quick sizes: not a measurement of the target)", None
        self.targets.append({"comparison": self.name, "target": name, "goal": goal,
                             "value": value, "met": met, "why": why})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def _ratios(self) -> None:
        base = {r["group"]: r["seconds"] for r in self.rows if r["baseline"] and r["seconds"]}
        for r in self.rows:
            b = base.get(r["group"])
            if b and r["seconds"] is not None:
                r["ratio"] = r["seconds"] / b

    def to_dict(self) -> dict:
        self._ratios()
        return {"module": self.name, "title": self.title, "status": self.status,
                "reason": self.reason, "quick": bool(self.args.quick),
                "isolated_memory": bool(self.args.isolate), "repeat": self.args.repeat,
                "budget_s": self.args.budget, "rows": self.rows, "targets": self.targets,
                "notes": self.notes, "elapsed_s": time.perf_counter() - self.started,
                "machine": machine_info()}

    def finish(self) -> dict:
        """Write the JSON (``--out``, else benchmarks/results_<name>.json) and print the table."""
        doc = self.to_dict()
        out = self.args.out or REPO / "benchmarks" / f"results_{self.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, default=_jsonable))
        print(render_table([doc]))
        return doc


def _jsonable(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


# ----------------------------------------------------------------------------- environment

def machine_info() -> dict:
    """What the numbers were measured on (for RESULTS.md)."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    total = 0
    try:
        with open("/proc/meminfo") as f:
            total = int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) * 1024
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version()}
    for name in ("numpy", "torch", "scipy", "plotly", "librosa", "parselmouth", "gradio"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nproc": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu": cpu, "ram_gb": round(total / 2**30, 1), "load_avg": os.getloadavg(),
            "versions": versions, "platform": platform.platform()}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- table

def fmt_seconds(s) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    return f"{r:.3g}×" if r >= 0.01 else f"1/{1 / r:.0f}"


def fmt_mb(mb) -> str:
    return "-" if mb is None else (f"{mb:.3g}" if mb < 1000 else f"{mb:,.0f}")


def _extra_text(extra: dict) -> str:
    parts = []
    for k, v in extra.items():
        if isinstance(v, float):
            v = f"{v:.3g}"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def render_table(docs: list[dict], markdown: bool = False) -> str:
    """The results table (plain text, or GitHub markdown) of one or more module reports."""
    head = ["comparison", "size / group", "method", "time", "ratio", "peak MB", "details"]
    lines: list[list[str]] = []
    for doc in docs:
        if doc["status"] != "ok":
            lines.append([doc["module"], "-", f"{doc['status']}: {doc['reason']}", "-", "-", "-",
                          ""])
        for r in doc["rows"]:
            details = _extra_text(r["extra"])
            if r.get("traced_mb") is not None:
                traced = f"tracemalloc peak={r['traced_mb']:.3g} MB"
                details = f"{details}, {traced}" if details else traced
            if r.get("note"):
                details = f"{details}; {r['note']}" if details else r["note"]
            if r.get("mem_error"):
                details = f"{details}; memory: {r['mem_error']}" if details else \
                    f"memory: {r['mem_error']}"
            method = r["method"] + (" (baseline)" if r["baseline"] else "")
            lines.append([doc["module"], r["group"], method, fmt_seconds(r["seconds"]),
                          fmt_ratio(r["ratio"]), fmt_mb(r["peak_mb"]), details])
    if markdown:
        esc = [[c.replace("|", "\\|") for c in row] for row in lines]
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(out + ["| " + " | ".join(row) + " |" for row in esc])
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    widths[-1] = len(head[-1])
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in lines])


def render_targets(docs: list[dict], markdown: bool = False) -> str:
    rows = [t for doc in docs for t in doc.get("targets", [])]
    mark = {True: "met", False: "MISSED", None: "not measured"}
    if markdown:
        out = ["| target | goal | measured | status |", "|---|---|---|---|"]
        out += [f"| {t['target']} | {t['goal']} | {t['value']} | {mark[t['met']]} |" for t in rows]
        return "\n".join(out)
    return "\n".join(f"[{mark[t['met']]:>12}] {t['target']}: {t['value']} (goal {t['goal']})"
                     + (f" - {t['why']}" if t["why"] else "") for t in rows)


# ----------------------------------------------------------------------------- worker

def _worker(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="run one method once and report its peak memory")
    p.add_argument("what", choices=["memory"])
    p.add_argument("module")
    p.add_argument("factory")
    p.add_argument("params")
    p.add_argument("--trace", action="store_true")
    a = p.parse_args(argv)
    oom_first()
    try:
        result = _memory_here(a.module, a.factory, json.loads(a.params), a.trace)
    except Exception as e:  # noqa: BLE001 (sent back to the parent as data)
        result = {"error": f"{type(e).__name__}: {e}"}
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
