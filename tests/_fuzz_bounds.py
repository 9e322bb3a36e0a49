"""Time and memory bounds shared by the fuzz tests (imported, not collected)."""

from __future__ import annotations

import faulthandler
import resource
import time
from contextlib import contextmanager


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def time_bounded(seconds: float, watchdog_seconds: float):
    """Time one case: a hard watchdog for real hangs, a soft assertion for slowness."""
    faulthandler.dump_traceback_later(watchdog_seconds, exit=True)
    start = time.perf_counter()
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    elapsed = time.perf_counter() - start
    assert elapsed < seconds, f"case took {elapsed:.2f} s (bound {seconds} s)"
