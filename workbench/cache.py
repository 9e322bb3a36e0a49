"""Bounded, thread-safe LRU caches and the content hash that keys them: sessions with the
same clip share work, and no session can grow memory without bound.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np


class LRU:
    """A small thread-safe least-recently-used cache (the queue runs callbacks in threads)."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value

    def get_or_compute(self, key, compute: Callable[[], Any]):
        value = self.get(key)
        if value is None:
            value = self.put(key, compute())
        return value

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

