"""Run every comparison, each in its own subprocess, then print one table and write results.json.

    python -m benchmarks.run_all                 # the full suite (`make benchmarks`)
    python -m benchmarks.run_all --quick         # tiny sizes: checks that everything runs
    python -m benchmarks.run_all --only f0,app   # a subset
    python -m benchmarks.run_all --markdown      # also print the tables as markdown
    python -m benchmarks.run_all --only hooks --merge   # re-run one, keep the rest of the JSON

A module that crashes or times out becomes an "error" entry with the end of its output; the
others still run (and the run exits non-zero).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from benchmarks import _harness as H

MODULES = ("f0", "similarity", "hooks", "head_scores", "model", "app", "interventions", "browser")
RESULTS = H.REPO / "benchmarks" / "results.json"
TIMEOUT = {"quick": 1800.0, "full": 3600.0}  # per module, seconds: hang guards, not targets


def run_module(name: str, args, out: Path) -> dict:
    """Run one bench module in its own process; its progress lines (stderr) pass through."""
    cmd = [sys.executable, "-m", f"benchmarks.bench_{name}", "--out", str(out)]
    if args.quick:
        cmd.append("--quick")
    for option in ("repeat", "budget"):
        if getattr(args, option) is not None:
            cmd += [f"--{option}", str(getattr(args, option))]
    if args.isolate != "auto":
        cmd += ["--isolate", args.isolate]
    timeout = TIMEOUT["quick" if args.quick else "full"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=H.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(H.REPO)})
    timer = threading.Timer(timeout, proc.kill)  # our own child, by its handle
    timer.start()
    tail: deque[str] = deque(maxlen=6)
    try:
        for line in proc.stderr:
            tail.append(line.rstrip())
            print(f"  {line.rstrip()}", file=sys.stderr, flush=True)
        proc.wait()
    finally:
        timed_out = not timer.is_alive() and time.perf_counter() - started >= timeout
        timer.cancel()
    if timed_out:
        return _error(name, f"timed out after {timeout:.0f} s", started)
    if proc.returncode != 0 or not out.is_file():
        return _error(name, f"exit {proc.returncode}: {' | '.join(list(tail)[-4:])}", started)
    return json.loads(out.read_text())


def _error(name: str, reason: str, started: float) -> dict:
    return {"module": name, "title": name, "status": "error", "reason": reason, "rows": [],
            "targets": [], "notes": [], "elapsed_s": time.perf_counter() - started}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    p.add_argument("--only", default=",".join(MODULES),
                   help=f"comma-separated subset of {', '.join(MODULES)}")
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--budget", type=float, default=None)
    p.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--markdown", action="store_true", help="also print markdown tables")
    p.add_argument("--merge", action="store_true",
                   help="keep the other modules' entries already in --out (re-run a subset)")
    args = p.parse_args(argv)
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        p.error(f"unknown module(s) {unknown}; accepted: {', '.join(MODULES)}")

    docs = []
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp:
        for name in chosen:
            print(f"[run_all] {name} ...", flush=True)
            doc = run_module(name, args, Path(tmp) / f"{name}.json")
            print(f"[run_all] {name}: {doc['status']}"
                  + (f" ({doc['reason']})" if doc.get("reason") else "")
                  + f" in {doc['elapsed_s']:.0f} s", flush=True)
            docs.append(doc)
    if args.merge and args.out.is_file():  # earlier entries of the modules not re-run
        fresh = {d["module"] for d in docs}
        earlier = [d for d in json.loads(args.out.read_text()).get("modules", [])
                   if d["module"] not in fresh]
        docs = sorted(earlier + docs, key=lambda d: MODULES.index(d["module"])
                      if d["module"] in MODULES else len(MODULES))
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick,
              "machine": H.machine_info() | {"versions": _versions()}, "modules": docs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print()
    print(H.render_table(docs))
    print()
    print(H.render_targets(docs))
    if args.markdown:
        print()
        print(H.render_table(docs, markdown=True))
        print()
        print(H.render_targets(docs, markdown=True))
    print(f"\nwrote {args.out}")
    return 1 if any(d["status"] == "error" for d in docs) else 0


def _versions() -> dict:
    """Library versions, imported here (run_all itself imports nothing heavy otherwise)."""
    out = {}
    for name in ("numpy", "torch", "scipy", "plotly", "librosa", "parselmouth", "gradio"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "not installed"
    import platform

    out["python"] = platform.python_version()
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
