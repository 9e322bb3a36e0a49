"""Bounded, thread-safe LRU caches and the content hash that keys them: sessions with the
same clip share work, and no session can grow memory without bound.

Each cache is bounded twice: by entries and by bytes (numpy arrays, DataFrames and the
containers and dataclasses holding them are measured by :func:`nbytes`), so one 10-minute clip
cannot hold as much memory as a hundred short ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

_SEEN_LIMIT = 10_000  # objects visited per measurement: a guard against huge containers


def nbytes(value: Any) -> int:
    """Approximate memory held by ``value``: array buffers, DataFrame columns, strings, and
    everything reachable through tuples, lists, dicts and dataclass fields (counted once)."""
    seen: set[int] = set()

    def size(v) -> int:
        if id(v) in seen or len(seen) > _SEEN_LIMIT:
            return 0
        seen.add(id(v))
        if isinstance(v, np.ndarray):
            return int(v.nbytes) if v.base is None or id(v.base) not in seen else 0
        if type(v).__module__.startswith("pandas"):
            if hasattr(v, "memory_usage"):
                usage = v.memory_usage(deep=True)
                return int(usage.sum()) if hasattr(usage, "sum") else int(usage)
            return sys.getsizeof(v)
        if type(v).__module__.startswith("plotly") and hasattr(v, "_data") \
                and hasattr(v, "_layout"):  # a figure: its data and layout, not its validators
            return size(v._data) + size(v._layout)
        if type(v).__module__.startswith("torch") and hasattr(v, "element_size"):
            return int(v.element_size() * v.nelement())
        if isinstance(v, (str, bytes, bytearray)):
            return sys.getsizeof(v)
        if isinstance(v, dict):
            return sum(size(k) + size(x) for k, x in v.items())
        if isinstance(v, (list, tuple, set, frozenset)):
            return sum(size(x) for x in v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return sum(size(getattr(v, f.name)) for f in dataclasses.fields(v))
        if hasattr(v, "__dict__") and not isinstance(v, type):
            return size(vars(v))
        return sys.getsizeof(v)

    return size(value)


class LRU:
    """A thread-safe least-recently-used cache bounded by ``maxsize`` entries and, when given,
    ``max_bytes`` (measured with :func:`nbytes` at insertion). A single value larger than
    ``max_bytes`` is returned but not kept."""

    def __init__(self, maxsize: int, max_bytes: int | None = None):
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._data: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict = {}  # key -> lock held while that key is being computed

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key, value):
        size = nbytes(value) if self.max_bytes is not None else 0
        with self._lock:
            if key in self._data:
                self._bytes -= self._sizes.pop(key)
                del self._data[key]
            if self.max_bytes is not None and size > self.max_bytes:
                return value  # too big to keep: the caller still gets it
            self._data[key] = value
            self._sizes[key] = size
            self._bytes += size
            while len(self._data) > self.maxsize or (
                    self.max_bytes is not None and self._bytes > self.max_bytes):
                old, _ = self._data.popitem(last=False)
                self._bytes -= self._sizes.pop(old)
        return value

    def get_or_compute(self, key, compute: Callable[[], Any]):
        """The cached value, or ``compute()`` kept. Concurrent callers of one key compute it
        once: the page's live route and Gradio's event often ask for the same view together."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            pending = self._pending.setdefault(key, threading.Lock())
        try:
            with pending:
                value = self.get(key)
                if value is None:
                    value = self.put(key, compute())
        finally:
            with self._lock:
                if self._pending.get(key) is pending:
                    del self._pending[key]
        return value

    @property
    def bytes(self) -> int:
        """Bytes held (as measured at insertion); 0 when the cache is bounded by entries only."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)


def content_key(*parts) -> str:
    """A short hash of arrays / strings / numbers: the identity of a clip or request."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str(part.dtype).encode() + str(part.shape).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:16]
