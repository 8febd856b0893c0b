"""glibc's malloc settings for the repair: where its large arrays come from and when they go back.

Three regimes, each measured on the 1M-triangle arches (2026-12-06):
- The default for the repair: a fixed 128 KiB mmap threshold (glibc's initial one). glibc otherwise
  raises the threshold to each large block freed (up to 32 MB), so the repair's many 4-30 MB
  temporaries soon come from the heap, whose freed space stays in the process: peak RSS was ~90 MB (a
  third) above the peak of live arrays. Above the threshold every array is its own mapping, handed
  back when freed.
- Reading, welding and measuring (`hand_back_freed_memory(reading_up_to(faces))` until the first
  measurement): their slices (2-12 MB each, many times over) as fresh mappings cost a clean 1M arch 0.7 s
  of system time on 260k page faults; from the heap 71k faults and 0.2-0.3 s, peak of a damaged arch
  237 -> 242 MB. The limit grows with the scan (12 MiB a million triangles: an int32 per corner and
  room): with a fixed 12 MiB, at 4M the same arrays were fresh mappings. With this and the Edges fixes
  of the same day, a 4M repair maps 7.8 GB of fresh pages instead of 15.0 (strace, 2026-12-07) and the
  4M repair went 8.51 -> 6.2-7.8 s on the quiet machine, peak 843 -> 805-832 MB. glibc raises its own
  threshold only up to 32 MiB, but takes a larger one set here.
- Cleaning and orienting (`hand_back_freed_memory(HUGE_PAGES_FROM)`): numpy asks the kernel for huge
  pages (madvise) for arrays of 4 MiB and more, so a fresh mapping of those faults once per 2 MB; the
  arrays below that (an int32 per face of a 1M scan is 4,000,000 bytes) fault once per 4 KB. As fresh
  mappings, a 1M scan with 45 % zero-area faces spread over it faulted 73k times in cleaning (130 ms of
  system time), one of 45 % copies 78k times, a clean arch 45k; with those arrays from the heap 42k, 40k
  and 26k (2026-12-07). Leaving it, the heap is not trimmed at once (malloc_trim after orienting cost
  the zero-area scan 2.5 ms, the clean arch 0.7): glibc trims its top by the 128 KiB rule on the next
  free, the previews' block trims the rest. Peaks of 1M command-line repairs, previews drawn, not higher (clean
  226-228 MB before and after; damaged 229 -> 217 MB, its dropped faces' edges let go before the sort).
- Previews and web copies (`temporaries_reused()`): about 800 MB of short-lived arrays, a few MB each;
  as fresh mappings 187k page faults and 0.4 CPU s, as much as the numpy work itself; from the heap 12k.
Leaving a larger threshold, the heap's free memory is trimmed back. All of it is process-wide and
harmless elsewhere; a no-op without glibc.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
HANDED_BACK_ABOVE = 128 << 10  # glibc's initial mmap threshold
READING_UP_TO = 12 << 20  # up to 1M triangles: an int32 per corner, with room for malloc's header
HUGE_PAGES_FROM = 4 << 20  # numpy's threshold for madvise(MADV_HUGEPAGE) on an array's memory
REUSED_UP_TO = 32 << 20  # the largest mmap threshold glibc sets itself on 64-bit


def _libc():
    try:
        # glibc's soname directly: ctypes.util.find_library() imports subprocess and runs ldconfig
        # (tens of ms of a command-line repair), and without glibc there is no mallopt to call anyway.
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


def _set(mmap_threshold: int, trim_threshold: int, trim_now: bool) -> None:
    libc = _libc()
    if libc is None:
        return
    if trim_now:
        libc.malloc_trim(0)
    libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    # A fixed mmap threshold also fixes the trim threshold: with 128 KiB every array freed at the top of
    # the heap went back to the system, to be faulted in again by the next one.
    libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)


def reading_up_to(faces: int) -> int:
    """The threshold while a scan of `faces` triangles is read, welded and measured: 12 MiB a million."""
    return max(READING_UP_TO, READING_UP_TO * faces // 1_000_000)


def hand_back_freed_memory(threshold: int = HANDED_BACK_ABOVE, trim: bool = False) -> None:
    """Freed arrays of at least `threshold` bytes go back to the system at once; below it they stay in
    the heap, which keeps up to 4x the threshold free on its top. With trim, whatever the heap holds
    free now goes back first (when the threshold drops again)."""
    _set(threshold, 4 * threshold if threshold > HANDED_BACK_ABOVE else HANDED_BACK_ABOVE, trim)


@contextmanager
def temporaries_reused():
    """Within the block, freed arrays up to 32 MB stay in the heap for the next ones (no page faults);
    afterwards the repair's 128 KiB rule is back and the heap's free memory handed back."""
    # The heap must not shrink either whenever its top is freed (the trim threshold), or it faults again.
    _set(REUSED_UP_TO, 1 << 30, trim_now=False)
    try:
        yield
    finally:
        hand_back_freed_memory(trim=True)
