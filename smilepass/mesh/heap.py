"""Short-lived arrays drawn from memory the process already has, for one burst of work.

The repair keeps glibc's mmap threshold at 128 KiB (pipeline._hand_back_freed_memory) so that every large
freed array goes back to the system at once and its peak memory stays near its live arrays. The price is
that every array above 128 KiB is a fresh mapping whose pages the kernel faults in and zeroes on first
touch: the previews and web copies of a 1M-triangle scan make about 800 MB of such temporaries (a few MB
each, freed at once), and the page faults cost 0.4 CPU s, as much as the numpy work itself.
Inside `temporaries_reused()` arrays up to 32 MB come from the heap instead, so a freed one's pages serve
the next; on leaving, the 128 KiB thresholds are set again and the heap's free memory handed back.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
_REUSED_UP_TO = 32 << 20  # glibc's largest mmap threshold on 64-bit
_HANDED_BACK_ABOVE = 128 << 10  # pipeline._hand_back_freed_memory's threshold (glibc's initial one)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


@contextmanager
def temporaries_reused():
    """Within the block, freed arrays up to 32 MB stay in the heap for the next ones (no page faults);
    afterwards the heap's free memory goes back to the system. A no-op without glibc."""
    libc = _libc()
    if libc is None:
        yield
        return
    # The heap must not shrink either whenever its top is freed (the trim threshold), or it faults again.
    libc.mallopt(_M_MMAP_THRESHOLD, _REUSED_UP_TO)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _HANDED_BACK_ABOVE)
        libc.mallopt(_M_TRIM_THRESHOLD, _HANDED_BACK_ABOVE)
        libc.malloc_trim(0)
