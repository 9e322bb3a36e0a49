"""Hang and memory bounds shared by the fuzz tests (imported, not collected).

Memory is measured per case, not against the process-lifetime peak: earlier tests raise
``ru_maxrss`` past any bound a later case could be held to, so a lifetime peak cannot fail.
On Linux the kernel's high-water mark is reset before each case (``/proc/self/clear_refs``,
value 5) and read back from ``VmHWM``; elsewhere tracemalloc's peak is used, which sees numpy
buffers (not torch storages). Time is not asserted (tests never time things); a watchdog only
turns a real hang into a failure with a traceback instead of a stalled run.
"""

from __future__ import annotations

import faulthandler
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in {STATUS}")


def _can_reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


RESETTABLE_PEAK = _can_reset_peak()


@contextmanager
def case_memory(limit_mb: float):
    """Assert that the enclosed case raises peak memory by less than ``limit_mb`` over where it
    started (the process's resident set on Linux, traced Python/numpy allocations elsewhere)."""
    if RESETTABLE_PEAK:
        CLEAR_REFS.write_text("5")  # VmHWM := current RSS
        start = _status_kb("VmRSS")
        yield
        growth_mb = (_status_kb("VmHWM") - start) / 1024
    else:
        tracemalloc.start()
        try:
            yield
            growth_mb = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    assert growth_mb < limit_mb, f"one case raised peak memory by {growth_mb:.0f} MB " \
                                 f"(bound {limit_mb} MB)"


@contextmanager
def hang_watchdog(seconds: float):
    """Abort the run with every thread's traceback if the enclosed case hangs for ``seconds``
    (a C decoder loop cannot be interrupted from Python). Generous: slowness is not a failure."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@contextmanager
def bounded_case(limit_mb: float, watchdog_seconds: float = 300.0):
    """One fuzz case: no hang, and at most ``limit_mb`` of peak memory growth."""
    with hang_watchdog(watchdog_seconds), case_memory(limit_mb):
        yield
