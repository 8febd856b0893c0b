"""The repair's memory: glibc's heap settings (heap.py) and what is let go before the next large array."""
import os
import sys

import numpy as np
import pytest

from smilepass.mesh import heap, pipeline, previews, webcopy

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or heap._libc() is None,
                                reason="glibc's malloc")


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def touched(mb: int) -> None:
    a = np.ones(mb << 17)  # mb MB of float64, every page written
    del a


def test_freed_arrays_stay_for_the_next_inside_the_block_and_go_back_after_it():
    # What the repair sets: a freed large array leaves at once. Trimmed first: free memory the heap still
    # holds from earlier tests in this process would serve the arrays below without growing.
    heap.hand_back_freed_memory(trim=True)
    base = resident_mb()
    touched(24)
    assert resident_mb() < base + 8
    with heap.temporaries_reused():
        touched(24)
        assert resident_mb() > base + 16  # kept for the next array
    assert resident_mb() < base + 8  # handed back on leaving
    touched(24)
    assert resident_mb() < base + 8  # and the repair's setting is back


def test_the_heap_serves_a_large_scans_weld_and_measuring_too():
    """The threshold while welding and measuring grows with the scan: at 4M triangles their temporaries
    are 48 MB, and with the 12 MiB of a 1M scan each one was fresh pages to fault in."""
    heap.hand_back_freed_memory(trim=True)  # as above
    base = resident_mb()
    assert heap.reading_up_to(1_000_000) == heap.READING_UP_TO  # 12 MiB at 1M, as measured there
    heap.hand_back_freed_memory(heap.reading_up_to(4_000_000))
    touched(40)
    assert resident_mb() > base + 32  # kept in the heap for the next array
    heap.hand_back_freed_memory(trim=True)
    assert resident_mb() < base + 8  # handed back when the repair's rule returns
    touched(40)
    assert resident_mb() < base + 8  # and the repair's setting is back


def test_the_repair_draws_its_previews_and_web_copies_inside_the_block(tmp_path, monkeypatch):
    from contextlib import contextmanager

    from smilepass.mesh import synthetic as syn

    from .meshgen import write_binary_stl

    inside, seen = [], []

    @contextmanager
    def recorded():
        inside.append(True)
        yield
        inside.pop()

    # The previews' and copies' functions are imported when drawn (pipeline.py): patched where they live.
    for module, name in ((previews, "render_previews"), (previews, "save_previews"), (webcopy, "save_web_copies"),
                         (pipeline, "write_stl")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: (seen.append((_name, bool(inside))),
                                                                                    _real(*a, **k))[1])
    monkeypatch.setattr(pipeline, "temporaries_reused", recorded)
    V, F = syn.arch(4_000, seed=1)
    write_binary_stl(tmp_path / "scan.stl", V, F)
    pipeline.repair(tmp_path / "scan.stl", tmp_path / "out", "scan")
    assert seen == [("render_previews", True), ("save_previews", True), ("save_web_copies", True),
                    ("write_stl", False)]


def test_dropping_faces_lets_the_old_edges_vertex_pairs_go_before_the_new_edges_are_made(tmp_path, monkeypatch):
    """Dropping faces lets the cached edges go (they are sorted again when next needed) and leaves the
    old object, which the input's piece count may still hold, only its grouping: if it still held its
    heads, twins and edge ids (an int32 per half-edge each), the repair's memory peaked there (1M
    damaged arch 256 MB against 228)."""
    from smilepass.mesh import synthetic as syn

    from .meshgen import write_binary_stl

    held = []
    real = pipeline._Work._keep

    def recorded(self, keep):
        old = self.edges
        real(self, keep)
        if old is not None:
            still = [name for name in ("_heads", "_twins", "_he_edge") if getattr(old, name) is not None]
            held.append((self.edges, still))

    monkeypatch.setattr(pipeline._Work, "_keep", recorded)
    V, F = syn.bench_scan(20_000)  # duplicates and debris: faces are dropped with the edges at hand
    write_binary_stl(tmp_path / "scan.stl", V, F)
    pipeline.repair(tmp_path / "scan.stl", tmp_path / "out", "scan", preview=False)
    assert held and held == [(None, [])] * len(held)


def test_the_repair_welds_under_the_threshold_of_its_scans_size(tmp_path, monkeypatch):
    """The threshold above is the scan's, not the fixed 12 MiB: the repair asks for it with the file's
    triangle count before welding."""
    from smilepass.mesh import synthetic as syn

    from .meshgen import write_binary_stl

    asked, thresholds = [], []
    monkeypatch.setattr(pipeline, "reading_up_to", lambda faces: asked.append(faces) or 50 << 20)
    real = pipeline.hand_back_freed_memory
    monkeypatch.setattr(pipeline, "hand_back_freed_memory",
                        lambda threshold=heap.HANDED_BACK_ABOVE, trim=False: (thresholds.append(threshold),
                                                                              real(threshold, trim))[1])
    V, F = syn.arch(4_000, seed=1)
    write_binary_stl(tmp_path / "scan.stl", V, F)
    pipeline.repair(tmp_path / "scan.stl", tmp_path / "out", "scan", preview=False)
    assert asked == [len(F)] and 50 << 20 in thresholds


def test_cleaning_and_orienting_take_their_smaller_arrays_from_the_heap(tmp_path, monkeypatch):
    """Cleaning and orienting run with the threshold at numpy's huge-page size (their int32-per-face
    arrays are fresh 4 KB pages otherwise), and the 128 KiB rule is back before the holes are filled."""
    from smilepass.mesh import synthetic as syn

    from .meshgen import write_binary_stl

    events = []
    real = pipeline.hand_back_freed_memory
    monkeypatch.setattr(pipeline, "hand_back_freed_memory",
                        lambda threshold=heap.HANDED_BACK_ABOVE, trim=False: (events.append(threshold),
                                                                              real(threshold, trim))[1])
    for name in ("clean", "orient", "fill_holes"):
        method = getattr(pipeline._Work, name)
        monkeypatch.setattr(pipeline._Work, name,
                            lambda self, *a, _m=method, _n=name: (events.append(_n), _m(self, *a))[1])
    V, F = syn.degenerate_scan(4_000, 0.3, "zero-area")
    write_binary_stl(tmp_path / "scan.stl", V, F)
    pipeline.repair(tmp_path / "scan.stl", tmp_path / "out", "scan", preview=False)
    cleaning = events.index("clean")
    assert events[cleaning + 1:events.index("orient")] == [heap.HUGE_PAGES_FROM]
    assert events[events.index("orient") + 1:events.index("fill_holes")] == [heap.HANDED_BACK_ABOVE]
