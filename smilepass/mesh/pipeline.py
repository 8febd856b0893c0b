"""The repair pipeline: read, clean, orient, fill holes, render previews, save.

Everything is numpy/scipy (see topology.py for why), the previews included (render.py draws them
with a z-buffer; Open3D is no longer imported on the repair path).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MeshRejected, Phrase, Sentence
from .heap import HUGE_PAGES_FROM, READING_UP_TO, hand_back_freed_memory, reading_up_to, temporaries_reused
from .holes import fill, find_loops
from .orient import orient
from .outputs import AtomicOutputs
from .readers import DEGENERATE_MAX_SHARE, FileInfo, load_file, mostly_degenerate
from .topology import (
    Edges,
    SetAside,
    components_through,
    duplicate_face_mask,
    edge_loop_sizes,
    face_shape,
    jump_nodes_to_roots,
    manifold_components,
    measure,
    repeated_corner_mask,
    same_winding,
    tails_heads,
)
from .weld import nearby_remap, spatial_order, weld_exact
from .writers import write_ply, write_stl


@dataclass
class RepairOptions:
    """What the repair may change. Fractions are relative to the scan itself, so the same defaults suit
    a 3 MB quadrant scan and a 50 MB full arch (units are whatever the file uses, normally mm)."""

    # Vertices closer than this fraction of the bounding-box diagonal are one vertex (float-noise
    # cracks; 1e-5 of a 70 mm arch is 0.7 micrometres, far below a scanner's point spacing).
    weld_tolerance: float = 1e-5
    # A separate piece whose area AND triangle count are both below this fraction of the largest
    # piece's is debris and removed (a small body with fine detail, i.e. many triangles, is kept).
    debris_max_area_fraction: float = 0.01
    # A boundary loop is filled only if its length is at most this fraction of its piece's bounding-box
    # diagonal (0.2 of a 70 mm arch: holes up to ~14 mm round, ~4 mm across) ...
    hole_max_perimeter_fraction: float = 0.2
    # ... and, in a piece with a gum margin, has at most this fraction of the margin loop's edges.
    # The margin (the longest loop of an open piece, longer than the limit above) is never filled.
    hole_max_edges_fraction: float = 0.25
    # Verdicts: fewer triangles than this after repair means "needs_rescan".
    min_triangles: int = 1000
    # A second piece larger than this fraction of the largest piece's area means "needs_rescan"
    # (an arch scan is one surface). Such pieces are always kept.
    pieces_max_area_fraction: float = 0.2
    # Any hole left open (besides the margin) means "needs_rescan"; when they are longer in total than
    # this fraction of the bounding-box diagonal the reason says most of the surface is missing.
    missing_max_perimeter_fraction: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> RepairOptions:
        """Options from JSON (e.g. a stored job); unknown keys are ignored, values are coerced."""
        values = {}
        for f in dataclasses.fields(cls):
            if d and f.name in d and d[f.name] is not None:
                kind = type(f.default)
                values[f.name] = kind(float(d[f.name])) if kind is int else kind(d[f.name])
        return cls(**values)


@dataclass
class RepairResult:
    report: dict
    verdict: str  # "ready" | "repaired" | "needs_rescan"
    verdict_reason: str  # one sentence; "" when ready
    repaired_path: Path  # in the uploaded format (binary STL or binary PLY)
    repaired_stl_path: Path | None  # binary STL; equals repaired_path for STL uploads
    preview_before: Path | None  # None only when called with preview=False
    preview_after: Path | None
    web_before: Path | None = None  # the 3D viewer's copies (.glb), made with the previews
    web_after: Path | None = None


STAGES = ("reading", "cleaning", "orienting", "filling holes", "rendering", "web copy", "saving")
_WEIGHTS = {"reading": 0.10, "cleaning": 0.35, "orienting": 0.07, "filling holes": 0.08,
            "rendering": 0.28, "web copy": 0.15, "saving": 0.12}


class _Progress:
    """Times the stages and reports overall progress (0..1, never decreasing) to the callback."""

    def __init__(self, callback, preview: bool):
        self.callback = callback
        weights = {k: v for k, v in _WEIGHTS.items() if preview or k not in ("rendering", "web copy")}
        total = sum(weights.values())
        self.start, acc = {}, 0.0
        for name in STAGES:
            if name in weights:
                self.start[name] = acc
                acc += weights[name] / total
        self.weight = {k: v / total for k, v in weights.items()}
        self.seconds: dict[str, float] = {}
        self.current = None
        self.t0 = None
        self.reported = -1.0

    def stage(self, name: str) -> None:
        self._close()
        self.current, self.t0 = name, time.perf_counter()
        self.at(0.0, force=True)

    def at(self, within: float, force: bool = False) -> None:
        """Report; calls closer than 1 % apart within a stage are dropped (the callback may write to
        Redis or a database)."""
        fraction = round(self.start[self.current] + self.weight[self.current] * within, 4)
        if self.callback is not None and (force or fraction >= self.reported + 0.01):
            self.reported = fraction
            self.callback(self.current, fraction)

    def _close(self) -> None:
        if self.current is not None:
            self.seconds[self.current] = round(time.perf_counter() - self.t0, 4)

    def done(self) -> None:
        self._close()
        self.current = None
        if self.callback is not None:
            self.callback("saving", 1.0)


def repair(src_path, out_dir, stem: str, options: RepairOptions | None = None, progress=None, *,
           preview: bool = True, output_path=None) -> RepairResult:
    """Check, repair and save one scan. Raises MeshRejected for files that are not usable meshes.

    Writes out_dir/{stem}.repaired{.stl|.ply} (the uploaded format), {stem}.repaired.stl (binary STL,
    the same file for STL uploads), {stem}.before.png and {stem}.after.png, and the
    viewer's web copies {stem}.before.glb and {stem}.after.glb (with the previews). Each file is written under a
    temporary name in out_dir and renamed into place at the very end. `output_path` (the CLI) writes the
    repaired mesh there instead, in the format its extension names, and no second STL copy.
    `progress(stage, fraction)`: fraction is the overall progress, 0..1."""
    opts = options or RepairOptions()
    hand_back_freed_memory(READING_UP_TO)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = _Progress(progress, preview)
    t_start = time.perf_counter()

    try:
        steps.stage("reading")
        # One pass over the file: load_file() makes every check inspect_file() makes, before it allocates.
        raw = load_file(src_path, progress=lambda x: steps.at(0.7 * x))
        info: FileInfo = raw.info
        steps.at(0.7)
        hand_back_freed_memory(reading_up_to(info.triangles))  # the weld's and measuring's temporaries
        mesh = _Work.from_raw(raw, opts)
        del raw
        return _repair(mesh, opts, steps, info, out_dir, stem, preview, output_path, t_start)
    finally:
        hand_back_freed_memory()  # a refused file leaves the process as it found it, not at 12 MiB


def _repair(mesh, opts, steps, info, out_dir, stem, preview, output_path, t_start) -> RepairResult:
    steps.stage("cleaning")
    mesh.clean(steps)
    steps.stage("orienting")
    mesh.orient()
    hand_back_freed_memory()  # the rest of the repair by the 128 KiB rule, untrimmed (heap.py)
    steps.stage("filling holes")
    mesh.fill_holes()
    mesh.finish()
    verdict, reason_parts = mesh.verdict()
    reason = reason_sentence([str(part) for part in reason_parts])

    with AtomicOutputs() as outputs:
        preview_before = preview_after = web_before = web_after = None
        if preview:
            steps.stage("rendering")
            # Imported here (and counted in this stage): the previews and web copies bring scipy.spatial,
            # pyfqmr and PIL (0.6-0.7 s of a command-line repair's start-up, measured 2026-12-06), which a
            # repair without them never uses. The worker has them loaded already (the web app's scan
            # views import webcopy; smilepass.images imports PIL), so its work horses do not pay this.
            from .previews import RepairedMesh, render_previews, save_previews
            from .webcopy import clustered_copy, save_web_copies

            # The pictures' and copies' temporaries reuse memory (heap.py): 0.4 CPU s of page faults at 1M.
            with temporaries_reused():
                n_kept = len(mesh.F) - mesh.counts["fill_triangles_added"]
                clustered = clustered_copy(mesh.V, mesh.F)  # made once: the previews draw from it too
                images = render_previews(RepairedMesh(mesh.V0, mesh.F0, mesh.removed_mask(), mesh.V, mesh.F, n_kept,
                                                      mesh.flipped, mesh.min_height), progress=steps.at,
                                         clustered=clustered)
                steps.at(0.85)
                preview_before = out_dir / f"{stem}.before.png"
                preview_after = out_dir / f"{stem}.after.png"
                save_previews(outputs, images, preview_before, preview_after)
                steps.stage("web copy")
                web_before, web_after = out_dir / f"{stem}.before.glb", out_dir / f"{stem}.after.glb"
                save_web_copies(outputs, mesh, n_kept, web_before, web_after, progress=steps.at, clustered=clustered)

        steps.stage("saving")
        if output_path is not None:
            repaired_path = Path(output_path)
            as_ply = repaired_path.suffix.lower() == ".ply"
            repaired_stl = None if as_ply else repaired_path
        else:
            repaired_path = out_dir / f"{stem}.repaired{info.extension}"
            as_ply = info.extension == ".ply"
            repaired_stl = out_dir / f"{stem}.repaired.stl"
        if as_ply:
            with outputs.open(repaired_path) as f:
                write_ply(f, mesh.V, mesh.F, mesh.colors)
            steps.at(0.5)
        if repaired_stl is not None:
            with outputs.open(repaired_stl) as f:
                write_stl(f, mesh.V, mesh.F)
        steps.at(0.95)
    steps.done()

    report = mesh.report(info, opts)
    report["stage_seconds"] = steps.seconds
    report["total_seconds"] = round(time.perf_counter() - t_start, 4)
    report["verdict"] = verdict
    report["verdict_reason"] = reason
    # The same reason as templates and numbers, for showing it in the reader's language.
    report["verdict_reason_parts"] = [part.as_json() for part in reason_parts]
    return RepairResult(report, verdict, reason, repaired_path, repaired_stl, preview_before, preview_after,
                        web_before, web_after)


def _rows_equal(F: np.ndarray, F0: np.ndarray, rows: np.ndarray, step: int = 1 << 16) -> bool:
    """F == F0[rows], a slice at a time (a whole gathered copy of F0 was the peak of a 1M repair's
    memory)."""
    if len(F) != len(rows):
        return False
    for start in range(0, len(rows), step):
        if not np.array_equal(F[start:start + step], np.take(F0, rows[start:start + step], axis=0)):
            return False
    return True


def _sig(x: float) -> float:
    return float(f"{x:.6g}")


def _sentence_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# What a repair may do, in the order a reason lists it: the count's key, then the part of the
# sentence for one and for several (written as Sentence(...) so that the catalogue extraction finds them).
CHANGES = [
    ("welded_vertices", Sentence("closed float-noise cracks at 1 vertex"),
     Sentence("closed float-noise cracks at %(count)s vertices")),
    ("holes_filled", Sentence("filled 1 hole"), Sentence("filled %(count)s holes")),
    ("fragments_removed", Sentence("removed 1 debris fragment"), Sentence("removed %(count)s debris fragments")),
    ("duplicates_removed", Sentence("removed 1 duplicate triangle"),
     Sentence("removed %(count)s duplicate triangles")),
    ("degenerate_removed", Sentence("removed 1 degenerate triangle"),
     Sentence("removed %(count)s degenerate triangles")),
    ("non_manifold_removed", Sentence("removed 1 triangle on non-manifold edges"),
     Sentence("removed %(count)s triangles on non-manifold edges")),
    ("flipped_triangles", Sentence("turned 1 inverted triangle the right way"),
     Sentence("turned %(count)s inverted triangles the right way")),
]


def reason_sentence(parts: list[str]) -> str:
    """A verdict reason from its parts: a whole sentence as it is; the things done, listed as one
    sentence ("Filled 2 holes and removed 5 duplicate triangles.")."""
    if not parts:
        return ""
    if len(parts) == 1 and parts[0].endswith("."):
        return parts[0]
    sentence = _sentence_list(parts)
    return sentence[0].upper() + sentence[1:] + "."


@dataclass
class _Work:
    """The mesh being repaired, what is cached about it, and what happened to it."""

    V0: np.ndarray  # the input after the exact weld (what the file says), kept for the before image
    F0: np.ndarray
    V: np.ndarray
    F: np.ndarray
    colors: np.ndarray | None
    opts: RepairOptions
    diag: float
    provenance: np.ndarray = None  # index into F0 of every face of F (-1 for added faces)
    areas: np.ndarray = None  # per face of F
    thin: np.ndarray = None  # per face of F: no area to speak of (see face_shape)
    edges: Edges | None = None  # of F, or None when it has to be computed again
    piece: np.ndarray | None = None  # piece label per face of F (connected through manifold edges)
    before: dict = None
    after: dict = None
    counts: dict = field(default_factory=dict)
    pieces: np.ndarray = None  # areas of the kept pieces
    margin_edges: int = 0
    margin_length: float = 0.0
    open_holes: int = 0
    open_hole_length: float = 0.0
    largest_open_hole: float = 0.0
    flipped: np.ndarray | None = None  # per face of F (before filling): winding reversed by orient()
    open_rims: np.ndarray | None = None  # vertices on the rims of holes left open (for the web copy)
    slot: np.ndarray = None  # per face of F: its number among the faces of the input's edges (clean())
    consistent: bool = False  # cleaning knows F to be consistently wound (orient() skips its check)

    @classmethod
    def from_raw(cls, raw, opts: RepairOptions) -> _Work:
        V, inverse, first = weld_exact(raw.vertices)
        if raw.faces is None:
            F = inverse.reshape(-1, 3)
            colors = None
        else:
            F = inverse[raw.faces]
            colors = raw.colors[first] if raw.colors is not None else None
        del inverse
        F = F.astype(np.int32 if len(V) < 2**31 - 1 else np.int64, copy=False)
        reordered = spatial_order(V, F)  # a large file in no spatial order: every later stage misses the cache
        if reordered is not None:
            V, F, vertex_order = reordered
            if colors is not None:
                colors = np.take(colors, vertex_order, axis=0)
            del vertex_order
        if raw.faces is None:
            pts = V
        else:
            used = np.zeros(len(V), bool)
            used[F.ravel()] = True
            pts = V[used]
        diag = float(np.linalg.norm(pts.max(axis=0).astype(np.float64) - pts.min(axis=0))) if len(pts) else 0.0
        del pts
        work = cls(V, F, V, F, colors, opts, diag)
        work.provenance = np.arange(len(F), dtype=np.int32 if len(F) < 2**31 else np.int64)
        return work

    @property
    def min_height(self) -> float:
        # A triangle thinner than a tenth of the weld tolerance (1e-6 of the diagonal: 70 nm on a 70 mm
        # arch, where float32 noise is ~5 nm) is degenerate. CAD exports have legitimate needles down to
        # ~2e-6 of the diagonal, so this is deliberately far below the weld tolerance.
        return 0.1 * self.opts.weld_tolerance * self.diag

    def _keep(self, keep: np.ndarray) -> None:
        """Drop faces. Cached edges are let go and sorted again from the faces kept when next needed:
        since the edge sort takes numpy's quicksort for keys out of runs, that is cheaper than narrowing
        the old edges down (1M faces with 45 % zero-area: 550k kept, 25 ms against 45; 50 of 995k faces
        dropped, 49 against 62; the same with the faces shuffled, 29 against 45 and 50 against 61; same
        result), and the old edges' arrays go before the new ones are made."""
        # Gathers by index: a boolean mask on the (n, 3) face array takes numpy's slow path
        # (measured at 200k faces: 5.4 ms against 0.8 ms for all four).
        kept = np.flatnonzero(keep)
        self.F = np.take(self.F, kept, axis=0)
        self.provenance = np.take(self.provenance, kept)
        self.slot = np.take(self.slot, kept)
        self.areas = np.take(self.areas, kept)
        self.thin = np.take(self.thin, kept)
        self.piece = None
        if self.edges is not None:
            # Only the grouping stays for the input's edges (counting the input's pieces later): their
            # heads, twins and edge ids (12 MB each at 1M faces) go now.
            self.edges.slim()
            self.edges = None

    def _edges(self) -> Edges:
        if self.edges is None:
            self.edges = Edges(self.F, len(self.V))
        return self.edges

    def clean(self, steps: _Progress) -> None:
        c = self.counts
        # The input's pieces are counted later: when cleaning removes faces, from the pieces left.
        # Copies (the same three vertices as an earlier face) are set aside before the edges are sorted:
        # they go anyway, and a scan that is half copies then sorts half the half-edges. So are the faces
        # without an area: they go too (a needle after its shortest edge is collapsed, below), and the
        # report's upload column counts the surface's pieces and edges without them (measure()).
        measured = measure(self.V, self.F, self.min_height, count_components=False, set_aside_copies=True,
                           surface_only=True)
        self.before, self.edges, self.piece = measured.stats, measured.edges, measured.labels
        self.areas, self.thin, aside = measured.areas, measured.thin, measured.set_aside
        # Per face of F while it has the input's rows: the collapse and the removal below read it instead
        # of comparing every face's corners again (2 x 1.8 ms at 1M faces).
        repeated = measured.repeated
        # A file of mostly empty or repeated triangles is an export gone wrong: refuse it before the
        # repair spends time on it (thin covers repeated corners: they have no area).
        without_surface = int(np.count_nonzero(self.thin | measured.duplicates))
        # A few copies (below SET_ASIDE_MIN_SHARE) stay in the edges and go with the degenerate faces.
        late = None
        if aside is None and measured.duplicate_of is not None:
            copy_faces = np.flatnonzero(measured.duplicates)
            first = np.take(measured.duplicate_of, copy_faces)
            # Their windings are compared only when a vote needs them (below): copies of degenerate faces
            # (a scan of 45 % zero-area: 53k) go without one.
            late = SetAside(None, None, copy_faces, first, None, None)
            del copy_faces, first
        measured_duplicates = measured.duplicates
        del measured
        # Cleaning's and orienting's arrays below numpy's huge-page size from the heap (heap.py).
        hand_back_freed_memory(HUGE_PAGES_FROM, trim=True)
        if without_surface > DEGENERATE_MAX_SHARE * len(self.F):
            raise mostly_degenerate(without_surface, len(self.F))
        self.slot = self.provenance  # per face: its number among the faces the input's edges describe
        # The faces left out of the edges (no area, nothing added to the surface) go; of them, those with
        # three distinct corners (needles) have their shortest edge collapsed first with the slivers
        # among the faces kept (step 2): their rows as read (a set of copies once, through its first).
        n_left_out, slivers = 0, None
        if aside is not None and aside.left_out is not None:
            n_left_out = len(aside.left_out)
            at = aside.left_out
            at = at[~(np.take(repeated, at) | np.take(measured_duplicates, at))]
            slivers = np.take(self.F, at, axis=0)
            del at
        del measured_duplicates
        if aside is not None:
            kept = aside.kept.astype(self.provenance.dtype, copy=False)
            self.F = aside.faces
            self.provenance, self.slot = kept, np.arange(len(kept), dtype=kept.dtype)
            self.areas, self.thin = np.take(self.areas, kept), np.take(self.thin, kept)
            repeated = np.take(repeated, kept)
        steps.at(0.3)

        # 1. Float-noise cracks: merge boundary vertices closer than the tolerance. Only the boundary of
        # faces with an area: a thin face goes in step 2 anyway, and a heap of them would put every one
        # of their corners into the search (a scan half made of needles would search all its vertices).
        e = self.edges
        boundary_edges = np.flatnonzero(e.counts == 1) if aside is None else aside.boundary
        boundary_edges = boundary_edges[~self.thin[e.order[e.starts[boundary_edges]] // 3]]
        boundary = np.unique(e.edge_vertices(boundary_edges).ravel())
        remap, merged = nearby_remap(self.V, boundary, self.opts.weld_tolerance * self.diag)
        c["welded_vertices"] = merged
        input_edges = e  # for counting the input's pieces in step 5, when faces go before that
        changed_corners = bool(merged)  # the faces' corners are no longer the input's: look for new copies
        if merged:
            self.F, self.edges, self.piece = remap[self.F].astype(self.F.dtype), None, None
            if slivers is not None:
                slivers = remap[slivers].astype(slivers.dtype)
            repeated = None  # the weld may have made faces with a repeated corner
        elif self.before["degenerate_triangles"] == 0 and self.before["non_manifold_edges"] == 0 \
                and self.before["duplicate_triangles"] == 0:
            # Nothing to remove before the pieces: count them now (step 5 uses them as they are).
            count, self.piece = manifold_components(e)
            self.before["components"], input_edges = count, None

        # 2. Degenerate triangles. One without area but with three distinct corners (a needle, or a
        # sliver whose corner lies on its opposite edge) is removed by collapsing its shortest edge, so
        # its neighbours close up instead of leaving a slit; then every triangle with a repeated corner goes.
        del remap
        edges_before = self.edges
        c["collapsed_edges"], changed = self._collapse_slivers(repeated, slivers)
        del slivers
        # A face the collapse left with a repeated corner is marked thin by it, and a face with one in
        # the input keeps it: the input's mask still gives the same union.
        degenerate = (repeated_corner_mask(self.F) if repeated is None else repeated) | self.thin
        del repeated
        c["degenerate_removed"] = int(degenerate.sum()) + n_left_out
        copies = 0
        if aside is not None:
            # Copies share their corners and so their shape: a set of copies goes or stays whole.
            copy_degenerate = np.take(degenerate, aside.first_slot)
            c["degenerate_removed"] += int(np.count_nonzero(copy_degenerate))
            copies = len(copy_degenerate) - int(np.count_nonzero(copy_degenerate))
        if c["collapsed_edges"] and np.all(np.take(degenerate, changed)):
            # Every face the collapse changed goes too (a needle's own corner merged away, the usual
            # case): the faces kept are as they were, so the edges found before still hold.
            self.edges = edges_before
        elif c["collapsed_edges"]:
            changed_corners = True
        del edges_before, changed
        keep = ~degenerate
        if late is not None and not changed_corners:
            # The few copies left in the edges go with the degenerate faces (a set goes or stays whole),
            # after the vote, in which they count through their first face. After a weld or a collapse
            # the search below finds them again with any new ones.
            keep[late.copies] = False
            copies = int(np.count_nonzero(~np.take(degenerate, late.first_slot)))
            if copies:
                # The rows of every set that votes are the input's (only removed faces changed).
                late.same_winding = same_winding(self.F, late.first_slot, late.copies)
            aside = late
        # Of every set of copies in both windings, the winding its neighbours agree with (needs the edges
        # of the faces as read: not after a weld or a collapse, which keep the first face of each set).
        # Without copies the faces met at most two on an edge (measure() checked): removing faces then
        # makes no new pair, so the winding is consistent when each pair that was not lost a face or
        # had one turned, and no turned face disagrees with a neighbour (_turn checks).
        self.consistent = aside is not None and aside is not late and aside.two_by_two and self.edges is not None \
            and not changed_corners
        turn = None
        if copies and self.edges is not None and not changed_corners:
            turn = _agreeing_firsts(self.F, self.edges, aside, keep)
            if turn is not None:
                self._turn(*turn)
        if self.consistent:
            # Every pair of faces that walked an edge the same way loses a face or had one turned.
            gone = degenerate if turn is None else degenerate | turn[0]
            f1, f2 = aside.inconsistent
            self.consistent = bool(np.all(np.take(gone, f1) | np.take(gone, f2)))
        if not keep.all():
            self._keep(keep)
        # 3. Duplicates: the same three vertices, in either winding (back-to-back pairs too). Those of the
        # input were set aside above; a weld or a collapse can make new ones.
        duplicate = duplicate_face_mask(self.F, len(self.V)) if changed_corners else None
        c["duplicates_removed"] = copies + (int(duplicate.sum()) if duplicate is not None else 0)
        if duplicate is not None and duplicate.any():
            self._keep(~duplicate)
        self._check_left(Phrase("after removing degenerate and duplicate triangles"))
        steps.at(0.5)

        if input_edges is not None and input_edges is not self.edges:
            input_edges.slim()  # kept only for counting the input's pieces
        # 4. Non-manifold edges: keep the two best faces of each edge.
        removed = 0
        for _ in range(4):
            e = self._edges()
            nm = np.flatnonzero(e.counts > 2)
            if len(nm) == 0:
                break
            drop = _non_manifold_losers(self.F, e, nm)
            removed += int(drop.sum())
            self._keep(~drop)
        c["non_manifold_removed"] = removed
        self._check_left(Phrase("after resolving non-manifold edges"))
        steps.at(0.7)

        # 5. Pieces: drop debris (small relative to the largest piece), keep everything else.
        if self.piece is None:
            n_pieces, self.piece = manifold_components(self._edges())
        else:
            n_pieces = int(self.before["components"])
        if self.before["components"] is None:
            self.before["components"] = self._input_pieces(input_edges, n_pieces, changed_corners)
        del input_edges
        piece_area = np.bincount(self.piece, weights=self.areas, minlength=n_pieces)
        piece_faces = np.bincount(self.piece, minlength=n_pieces)
        largest = int(np.argmax(piece_area))
        # Debris is small in area AND in triangle count: a detailed small body (many triangles) stays.
        fraction = self.opts.debris_max_area_fraction
        debris = (piece_area < fraction * piece_area[largest]) & (piece_faces < fraction * piece_faces[largest])
        c["fragments_removed"] = int(debris.sum())
        drop = debris[self.piece]
        c["fragment_triangles_removed"] = int(drop.sum())
        piece = self.piece
        if drop.any():
            self._keep(~drop)
            piece = piece[~drop]
        kept = np.flatnonzero(~debris)
        relabel = np.full(n_pieces, -1)
        relabel[kept] = np.arange(len(kept))
        self.piece = relabel[piece]
        self.pieces = piece_area[kept]
        self._check_left(Phrase("after removing debris"))
        self._compact()
        self._edges()  # the edges of the faces kept, when faces went after the last sort (orienting needs them)
        steps.at(1.0)

    def _input_pieces(self, input_edges: Edges, n_pieces: int, changed_corners: bool = True) -> int:
        """The report's piece count of the input (faces joined through any shared edge), from the
        pieces of the faces kept (self.piece, not yet narrowed to debris): when the kept faces still
        have their input corners, each kept piece is connected in the input too, and only the removed
        faces have to be joined to them (instead of a second pass over every face). input_edges are
        those of the input without its copies (see clean()): a copy shares every edge with its set's
        first face, so it joins nothing the first face does not. changed_corners=False: clean() knows
        that no kept face has other corners than in the input (no weld, and the collapse changed only
        faces removed since; a turned face is another input face): no comparison of every row."""
        if changed_corners and not _rows_equal(self.F, self.F0, self.provenance):  # welded or collapsed: count afresh
            return int(manifold_components(input_edges, through_non_manifold=True)[0])
        if len(self.F) == input_edges.n_faces and self.edges is not None \
                and int(self.edges.counts.max(initial=0)) <= 2:
            # Only copies were removed and the faces kept meet on no non-manifold edge: the input's
            # pieces are the kept ones.
            return n_pieces
        node = np.full(input_edges.n_faces, -1, np.int32 if input_edges.n_faces < 2**31 else np.int64)
        node[self.slot] = self.piece
        removed = np.flatnonzero(node == -1)
        node[removed] = n_pieces + np.arange(len(removed))
        return components_through(input_edges, node, n_pieces + len(removed))

    def _turn(self, turn: np.ndarray, other: np.ndarray, known: tuple | None = None) -> None:
        """The faces of F marked in `turn` are replaced by the input faces `other` of them (a copy in the
        other winding, its corners as the input has them), in place (F and provenance are copied first
        when they are the input's or the slots). The cached edges follow (the same undirected edges in
        other slots); `known`: the positions in their order and the edge ids of the turned faces'
        half-edges (-1: not known), as _agreeing_firsts() found them."""
        at = np.flatnonzero(turn)
        old = np.take(self.F, at, axis=0)
        source = np.take(other, at)
        if self.F is self.F0:  # copies left in the edges (a few): F is still the input's own array
            self.F = self.F.copy()
        if self.provenance is self.slot:
            self.provenance = self.provenance.copy()
        self.F[at] = np.take(self.F0, source, axis=0)
        self.provenance[at] = source
        if self.edges is not None:
            positions, edges = self.edges.rewind(self.F, at, old, known)
            if self.consistent and self.edges.walked_alike_at(positions, edges):
                self.consistent = False
        else:
            self.consistent = False

    def _collapse_slivers(self, repeated: np.ndarray | None = None, more: np.ndarray | None = None,
                          rounds: int = 3) -> tuple[int, np.ndarray]:
        """(vertices merged, faces of F changed, possibly repeated). `repeated`: which faces of F have a
        repeated corner, when known. `more`: the rows of more slivers, not faces of F (measure() left
        them out of the edges; they go whatever the collapse does to them), collapsed in the first round
        with the thin faces of F: then only the faces of F that share a merged vertex change, often none
        (a needle's own corner merged away)."""
        collapsed = 0
        changed_faces = []
        sliver = np.flatnonzero(self.thin & ~(repeated_corner_mask(self.F) if repeated is None else repeated))
        for _ in range(rounds):
            F = self.F
            tri = np.take(F, sliver, axis=0)
            if more is not None:
                tri = np.concatenate([tri, more]) if len(sliver) else more
                more = None
            if len(tri) == 0:
                break
            # Squared length of edge k (corner k -> k + 1), coordinate by coordinate, from the slivers'
            # corners gathered as rows (converting whole columns of V to float64 cost 575k points a
            # column for 150k slivers of a 1M scan); the same float64 values, summed in the same order.
            # Laid out as (axis, corner, sliver) in one strided copy, so that every difference and square
            # below runs over contiguous arrays (150k slivers of a 1M scan: 13 -> 7 ms).
            corners = np.take(self.V, tri.ravel(), axis=0).reshape(len(tri), 3, 3).transpose(2, 1, 0)
            corners = np.ascontiguousarray(corners, dtype=np.float64)
            squared = [None, None, None]
            for axis in range(3):
                a, b, c = corners[axis]
                for edge, (p, q) in enumerate(((a, b), (b, c), (c, a))):
                    d = q - p
                    d *= d
                    if squared[edge] is None:
                        squared[edge] = d  # 0 + d is d: the sum as it was, from zero
                    else:
                        squared[edge] += d
            del corners
            # The shortest edge, the first of equal ones (what argmin of the three gives; no NaN here).
            k = (squared[1] < squared[0]).astype(np.intp)
            np.minimum(squared[0], squared[1], out=squared[0])
            k[squared[2] < squared[0]] = 2
            del squared
            rows = np.arange(len(tri))
            u, v = tri[rows, k], tri[rows, (k + 1) % 3]
            # In F's type, like remap: ufunc.at with values of another type takes numpy's slow casting path.
            lo, hi = np.minimum(u, v), np.maximum(u, v)
            remap = np.arange(len(self.V), dtype=F.dtype)
            np.minimum.at(remap, hi, lo)  # always towards the lower number: no cycles
            # Only the vertices merged away point elsewhere: only they follow their chains.
            remap = jump_nodes_to_roots(remap, hi)
            moved = np.zeros(len(self.V), bool)
            moved[hi] = True
            collapsed += int(moved.sum())
            # Only faces with a moved corner change (column by column: any(axis=1) on (n, 3) is slow).
            touched = np.flatnonzero(moved[F[:, 0]] | moved[F[:, 1]] | moved[F[:, 2]])
            changed = remap[np.take(F, touched, axis=0)]
            changed_faces.append(touched)
            # A face left with a repeated corner has no area and is thin (what face_shape() says of it);
            # only the others are measured again (a collapsed needle is usually all there is).
            repeated = repeated_corner_mask(changed)
            self.thin = self.thin.copy()
            self.thin[touched[repeated]] = True
            if repeated.all():
                # Every changed face is now thin and goes as degenerate before anything reads its row or
                # its area again (clean() drops it): F and the areas are left as they are (a 1M-face
                # scan with 150k needles: no copy of either, 7 ms).
                self.edges = self.piece = None
                break
            self.F = F.copy()
            self.F[touched] = changed
            self.areas = self.areas.copy()
            self.areas[touched[repeated]] = 0.0
            reshaped = touched[~repeated]
            if len(reshaped):
                self.areas[reshaped], self.thin[reshaped] = face_shape(self.V, changed[~repeated], self.min_height)
            self.edges = self.piece = None
            # Only a face that changed can have become a sliver.
            sliver = reshaped[self.thin[reshaped]]
        return collapsed, np.concatenate(changed_faces) if changed_faces else np.zeros(0, np.int64)

    def _check_left(self, when: Phrase) -> None:
        if len(self.F) == 0:
            raise MeshRejected("The scan has no usable surface: none of its %(triangles)s triangles is left %(when)s.",
                               triangles=self.before["triangles"], when=when)

    def _compact(self) -> None:
        used = np.zeros(len(self.V), bool)
        used[self.F.ravel()] = True
        if used.all():
            return
        new_index = np.cumsum(used, dtype=self.F.dtype)
        new_index -= 1
        self.F = np.take(new_index, self.F)
        used = np.flatnonzero(used)  # by index: a boolean mask on an (n, 3) array is several times slower
        self.V = np.take(self.V, used, axis=0)
        if self.colors is not None:
            self.colors = np.take(self.colors, used, axis=0)
        if self.edges is not None:  # same faces and half-edges; only the vertex numbers changed
            self.edges.n_vertices = len(self.V)
            self.edges._tails, self.edges._heads = tails_heads(self.F)

    def orient(self) -> None:
        e = self._edges()
        unchanged = (self.F is self.F0 and self.before["inconsistent_edges"] == 0) or self.consistent
        F, flipped, left, flipped_edges = orient(self.V, self.F, e, self.piece, len(self.pieces), self.areas,
                                                 known_consistent=unchanged, return_edges=True)
        self.counts["flipped_triangles"] = int(flipped.sum())
        self.flipped = flipped
        self.counts["inconsistent_edges_left"] = left
        if flipped.any():
            self.F = F
            self.edges = flipped_edges

    def fill_holes(self) -> None:
        e = self._edges()
        loops = find_loops(self.V, self.F, e)
        c = self.counts
        c["holes_filled"] = 0
        c["fill_triangles_added"] = 0
        # Cleaning (removing duplicate and non-manifold triangles) opens holes of its own, so the loops
        # found here can outnumber the uploaded scan's: the report accounts for every one of them.
        c["loops_before_filling"] = loops.count
        if loops.count == 0:
            self.after = self._after_filling(e, loops, np.zeros(0, bool), len(self.F))
            return
        first = np.unique(loops.label, return_index=True)[1]
        loop_piece = self.piece[loops.halfedges[first] // 3]
        diag = _piece_diagonals(self.V, self.F, self.piece, len(self.pieces))[loop_piece]
        limit = self.opts.hole_max_perimeter_fraction * diag

        # The margin of a piece: its longest loop, when that is too long to be a hole.
        order = np.lexsort((-loops.perimeter, loop_piece))
        longest = np.zeros(loops.count, bool)
        longest[order[np.r_[True, loop_piece[order][1:] != loop_piece[order][:-1]]]] = True
        margin = longest & (loops.perimeter > limit)
        margin_edges_of_piece = np.zeros(len(self.pieces))
        margin_edges_of_piece[loop_piece[margin]] = loops.edges[margin]
        edge_limit = np.where(margin_edges_of_piece[loop_piece] > 0,
                              self.opts.hole_max_edges_fraction * margin_edges_of_piece[loop_piece], np.inf)
        fillable = ~margin & loops.simple & (loops.perimeter <= limit) & (loops.edges <= edge_limit)

        if margin.any():
            main = np.flatnonzero(margin)[np.argmax(loops.perimeter[margin])]
            self.margin_edges = int(loops.edges[main])
            self.margin_length = float(loops.perimeter[main])
        left_open = ~margin & ~fillable
        c["margin_loops"] = int(margin.sum())
        self.open_holes = int(left_open.sum())
        self.open_hole_length = float(loops.perimeter[left_open].sum())
        self.largest_open_hole = float(loops.perimeter[left_open].max()) if left_open.any() else 0.0
        self.open_rims = loops.tails[left_open[loops.label]]

        which = np.flatnonzero(fillable)
        n_before = len(self.F)
        self.V, self.F, self.colors, added = fill(self.V, self.F, loops, which, self.colors)
        if added:
            self.provenance = np.concatenate([self.provenance, np.full(added, -1, self.provenance.dtype)])
            areas, thin = face_shape(self.V, self.F[n_before:], self.min_height)
            self.areas = np.concatenate([self.areas, areas])
            self.thin = np.concatenate([self.thin, thin])
            self.edges = None
        c["holes_filled"] = int(len(which))
        c["fill_triangles_added"] = int(added)
        if len(self.F) != n_before + added:
            raise RuntimeError("hole filling lost triangles")
        chosen = np.zeros(loops.count, bool)
        chosen[which] = True
        self.after = self._after_filling(e, loops, chosen, n_before)

    def finish(self) -> None:
        if self.F is self.F0 and self.V is self.V0:  # nothing was changed at all
            self.after = dict(self.before)
            return
        if self.after is None:  # fill_holes() could not tell: count again
            # Filling joins a hole's new triangles to the piece around it, so the pieces stay the pieces.
            self.after = measure(self.V, self.F, self.min_height, edges=self.edges, areas=self.areas,
                                 thin=self.thin, components=len(self.pieces)).stats
        self.edges = None

    def _after_filling(self, e: Edges, loops, chosen: np.ndarray, n_before: int) -> dict | None:
        """The repaired mesh's report numbers, from what cleaning, orienting and filling know, instead of
        sorting its edges again (measure() would find the same; tests/test_mesh_repair.py checks that).
        Cleaning left no duplicate, degenerate or unused vertex behind and orient() counted the
        inconsistent edges; filling adds manifold, consistently wound edges and vertices inside the
        bounding box, and closes exactly the boundary edges of the loops it filled. None when a filled
        three-edge loop repeats the face next to it (then measure() counts)."""
        F, new = self.F, self.F[n_before:]
        filled = chosen[loops.label]  # per boundary half-edge
        tri = np.flatnonzero(filled & (loops.edges[loops.label] == 3)) if len(new) else np.zeros(0, np.int64)
        if len(tri):
            h = loops.halfedges[tri]
            third = F[h // 3, (h % 3 + 2) % 3]  # the face's corner opposite the boundary edge
            if np.any(third == loops.heads[loops.successor[tri]]):
                return None
        open_edges = ~filled
        ev = np.stack([loops.tails[open_edges], loops.heads[open_edges]], axis=1)
        n_boundary = int(open_edges.sum())
        nm = int((e.counts > 2).sum())
        degenerate = int(np.count_nonzero(self.thin)) + int(np.count_nonzero(repeated_corner_mask(new)
                                                                               & ~self.thin[n_before:]))
        V = self.V
        box = [float(x) for x in V.max(axis=0).astype(np.float64) - V.min(axis=0).astype(np.float64)] \
            if len(V) else [0.0, 0.0, 0.0]
        return {
            "vertices": len(V),
            "triangles": int(len(F)),
            "boundary_loops": len(edge_loop_sizes(ev)),
            "boundary_edges": n_boundary,
            "non_manifold_edges": nm,
            "components": len(self.pieces),
            "duplicate_triangles": 0,
            "degenerate_triangles": degenerate,
            "inconsistent_edges": int(self.counts.get("inconsistent_edges_left", 0)),
            "bbox_mm": box,
            "surface_area_mm2": float(self.areas.sum()),
            "closed": bool(len(F) > 0 and n_boundary == 0 and nm == 0),
        }

    def removed_mask(self) -> np.ndarray:
        kept = np.zeros(len(self.F0), bool)
        p = self.provenance[self.provenance >= 0]
        kept[p] = True
        return ~kept

    def changed(self) -> list[Sentence]:
        done = []
        for key, one, many in CHANGES:
            n = self.counts.get(key)
            if n:
                done.append(one if n == 1 else Sentence(many.template, count=n))
        return done

    def verdict(self) -> tuple[str, list[Sentence]]:
        """The verdict and its reason: one sentence, or (repaired) the list of what was done."""
        o, a = self.opts, self.after
        if a["triangles"] < o.min_triangles:
            return "needs_rescan", [Sentence(
                "The scan has only %(triangles)s usable triangles; a usable arch scan has at least %(minimum)s.",
                triangles=a["triangles"], minimum=o.min_triangles)]
        large = int((self.pieces >= o.pieces_max_area_fraction * self.pieces.max()).sum())
        if large > 1:
            return "needs_rescan", [Sentence("The scan is in %(pieces)s large separate pieces; an arch scan should be "
                                             "one connected surface.", pieces=large)]
        if self.open_hole_length > o.missing_max_perimeter_fraction * self.diag:
            length = int(round(self.open_hole_length))
            if self.open_holes == 1:
                return "needs_rescan", [Sentence(
                    "Large parts of the surface are missing: 1 hole is too large to fill (%(length)s mm of open edge "
                    "besides the gum margin).", length=length)]
            return "needs_rescan", [Sentence(
                "Large parts of the surface are missing: %(holes)s holes are too large to fill (%(length)s mm of "
                "open edge besides the gum margin).", holes=self.open_holes, length=length)]
        if self.open_holes:
            largest = round(float(self.largest_open_hole), 1)
            if self.open_holes == 1:
                return "needs_rescan", [Sentence(
                    "The scan has 1 hole that could not be filled safely (the largest is %(largest)s mm around); "
                    "rescan that area.", largest=largest)]
            return "needs_rescan", [Sentence(
                "The scan has %(holes)s holes that could not be filled safely (the largest is %(largest)s mm "
                "around); rescan those areas.", holes=self.open_holes, largest=largest)]
        similar = similar_bodies(self.pieces)
        if similar > 1:
            # Bodies alike in size (five small parts beside a big one, several models in one export) are
            # not debris and not one arch: a person should look before it goes to the lab.
            return "check", [Sentence(
                "%(similar)s of the scan's %(pieces)s separate bodies are of similar size; an arch scan is one "
                "connected surface, so check that this is the right scan and export.",
                similar=similar, pieces=len(self.pieces))]
        done = self.changed()
        if done:
            return "repaired", done
        return "ready", []

    def report(self, info: FileInfo, opts: RepairOptions) -> dict:
        def clean(stats):
            out = dict(stats)
            out["bbox_mm"] = [_sig(x) for x in stats["bbox_mm"]]
            out["surface_area_mm2"] = _sig(stats["surface_area_mm2"])
            return out

        c = self.counts
        return {
            "format": info.format,
            "before": clean(self.before),
            # The upload's pieces and open, non-manifold and inconsistent edges are its surface's, without
            # the degenerate triangles (measure(surface_only=True)); reports stored before 2026-12-07 lack
            # this key and counted every triangle.
            "upload_counts": "surface",
            "after": clean(self.after),
            "welded_vertices": c.get("welded_vertices", 0),
            "degenerate_removed": c.get("degenerate_removed", 0),
            "collapsed_edges": c.get("collapsed_edges", 0),
            "duplicates_removed": c.get("duplicates_removed", 0),
            "non_manifold_removed": c.get("non_manifold_removed", 0),
            "fragments_removed": c.get("fragments_removed", 0),
            "fragment_triangles_removed": c.get("fragment_triangles_removed", 0),
            "flipped_triangles": c.get("flipped_triangles", 0),
            "inconsistent_edges_left": c.get("inconsistent_edges_left", 0),
            "holes_filled": c.get("holes_filled", 0),
            "fill_triangles_added": c.get("fill_triangles_added", 0),
            "holes_left_open": self.open_holes,
            # loops_before_filling = holes_filled + holes_left_open + margin_loops, and the repaired scan's
            # open loops are holes_left_open + margin_loops.
            "loops_before_filling": c.get("loops_before_filling", 0),
            "margin_loops": c.get("margin_loops", 0),
            "open_hole_length_mm": _sig(self.open_hole_length),
            "margin_loop_edges": self.margin_edges,
            "margin_loop_mm": _sig(self.margin_length),
            "pieces": len(self.pieces),
            "similar_bodies": similar_bodies(self.pieces),
            "piece_areas_mm2": [_sig(x) for x in sorted(self.pieces, reverse=True)[:20]],
            "options": dataclasses.asdict(opts),
        }


# Two bodies are "of similar size" when the larger has at most twice the smaller's area.
SIMILAR_AREA_RATIO = 2.0


def similar_bodies(areas) -> int:
    """The most kept bodies whose areas lie within a factor of SIMILAR_AREA_RATIO of one another (1 for
    a single body): five bodies of about 980 mm² beside one of 165,000 mm² give 5."""
    areas = np.sort(np.asarray(areas, dtype=np.float64))
    if len(areas) < 2:
        return len(areas)
    # For each body, how many bodies are at least as large and at most SIMILAR_AREA_RATIO times larger.
    upper = np.searchsorted(areas, areas * SIMILAR_AREA_RATIO, side="right")
    return int((upper - np.arange(len(areas))).max())


def _non_manifold_losers(F: np.ndarray, e: Edges, nm: np.ndarray) -> np.ndarray:
    """Faces to drop so that every edge in `nm` keeps two faces. The first kept is the face in the
    largest piece (pieces joined through manifold edges only) with the most manifold edges (a fin or
    a loose flap has fewer); the second is the best of those walking the edge the other way
    (consistent winding), else the next best."""
    m = len(F)
    manifold = (e.counts == 2)[e.he_edge].reshape(-1, 3)
    n_manifold = manifold.sum(axis=1)
    _, piece = manifold_components(e)
    piece_size = np.bincount(piece)[piece]
    counts = e.counts[nm]
    total = int(counts.sum())
    group = np.repeat(np.arange(len(nm)), counts)
    group_start = np.repeat(np.cumsum(counts) - counts, counts)
    h = e.order[np.repeat(e.starts[nm], counts) + np.arange(total) - group_start]
    f = h // 3
    score = piece_size[f].astype(np.int64) * 4 + n_manifold[f]
    order = np.lexsort((f, -score, group))  # best first within each edge; ties: the earlier face
    best = order[np.cumsum(counts) - counts]
    tails = F.ravel()
    same_as_best = tails[h] == tails[h[best]][group]
    not_best = np.ones(total, bool)
    not_best[best] = False
    order = np.lexsort((f, -score, same_as_best, not_best, group))
    rank = np.empty(total, np.int64)
    rank[order] = np.arange(total) - group_start
    drop = np.zeros(m, bool)
    drop[f[rank >= 2]] = True
    return drop


def _agreeing_firsts(F: np.ndarray, e: Edges, aside, alive: np.ndarray, rounds: int = 8):
    """Of every set of copies in both windings (the first face in F, the copies set aside by measure()),
    the winding its neighbours agree with: (turn, other) per face of F, turn marking the first faces
    whose set keeps its first copy of the other winding, `other` (input face numbers). None when no
    set has both windings. Keeping the first face of the set always (a back-to-back copy ahead of the
    original) would leave orient() to turn it and its neighbours: 30 ms at 200k faces with 45 % copies.
    The vote, over the set's three edges: the faces of single-winding sets (each copy counting, in
    the first face's winding) and the faces kept by sets decided in an earlier round walking an edge
    the other way count for the winding, those walking it the same way against it; a tie after the
    last round keeps the first face. Faces not `alive` (going as degenerate) do not vote."""
    m = len(F)
    live = np.take(alive, aside.first_slot)
    # The live copies in the other winding than their first face, picked at once (two boolean
    # selections of every copy one after the other cost 450k copies 5.7 ms).
    other_way = np.flatnonzero(live & ~aside.same_winding)
    if len(other_way) == 0:
        return None
    if aside.two_by_two and aside.inconsistent is not None:
        # No edge meets more than two faces, and measure() found the pairs walking an edge the same way.
        # A set's first face in none of them has every voter agreeing with it: it is kept, and votes for
        # keeping its neighbours. So when no such set's first face is in one, no set turns in any round:
        # the vote is skipped (an exporter that writes facets again further on: the original comes first,
        # 1M faces with 45 % copies 46 ms).
        walked_alike = np.zeros(m, bool)
        for faces in aside.inconsistent:
            walked_alike[faces] = True
        if not walked_alike[np.take(aside.first_slot, other_way)].any():
            return None
        del walked_alike
    index = np.int32 if len(aside.copies) and int(aside.copies[-1]) < 2**31 - 1 else np.int64
    none = np.iinfo(index).max
    # ufunc.at with values of the target's type (numpy's casting path is 15-30x slower).
    kept_other = np.full(m, none, index)
    np.minimum.at(kept_other, np.take(aside.first_slot, other_way).astype(index),
                  np.take(aside.copies, other_way).astype(index))
    del other_way
    mixed = kept_other < none  # the sets' first faces
    sets = np.flatnonzero(mixed)
    # Voters: each face once, a single-winding set's first face once for every face of the set.
    weight = alive.astype(np.int32)
    weight += np.bincount(aside.first_slot if live.all() else aside.first_slot[live], minlength=m).astype(np.int32)
    weight[sets] = 0  # by index: the sets are a third of the faces at most
    del live
    # The sets' first faces' half-edges (a row of three per set): their edges (measure() made the edge
    # ids) and which way they walk them.
    tails, heads = (e._tails, e._heads) if e._heads is not None else tails_heads(F)
    at = (3 * sets[:, None].astype(np.int64) + np.arange(3)).ravel()
    h_edge = np.take(e.he_edge, at)
    # One bool per half-edge (it walks its edge from the lower vertex): the gathers below at random
    # positions then read a bool instead of two int32s (600 KB against 4.8 MB at 200k faces).
    up = tails < heads
    # +1: the voter walks the edge the other way than the set's first face, agreeing with it.
    h_against = np.take(up, at).astype(np.int32)
    h_against *= -2
    h_against += 1
    # Per edge of those faces (the tally of no other edge is read): the voters walking it from its
    # lower to its higher vertex, minus those walking it the other way. On a copy-free edge of two faces
    # that is the face across (the set's first face does not vote); a fin's edge is summed one
    # position at a time. An edge two of those faces share is summed twice alike (cheaper than np.unique).
    def votes_at(position):
        h = e.order[position]
        w = face_weight[h // 3]
        # Turned by a sign (+1 walking up, -1 down): np.negative with where= is 20x slower (675k: 3.8 ms).
        w *= up[h].view(np.int8) * np.int8(2) - np.int8(1)
        return w

    face_weight = weight
    start = e.starts[h_edge]
    count = e.counts[h_edge]
    across = start + (e.order[start] == at)  # the other position of a two-face edge (at: the own half-edges)
    del at
    votes = votes_at(np.minimum(across, len(e.order) - 1))
    votes[count != 2] = 0
    # The sets' own positions in e.order on edges of one or two faces (-1 on the others): the turned
    # faces' half-edges are renumbered there (Edges.rewind) without being looked for again.
    own_at = start.astype(np.int64)
    own_at *= 2
    own_at += 1
    own_at -= across
    own_at[count > 2] = -1
    more = np.flatnonzero(count > 2)
    position = start[more].astype(np.int64)
    while len(more):
        votes[more] += votes_at(position)
        position += 1
        still = position < start[more] + count[more]
        more, position = more[still], position[still]
    tally = np.zeros(e.n_edges, np.int32)
    tally[h_edge] = votes
    del start, count, votes, across, more, position
    turn = np.zeros(len(sets), bool)
    open_sets = np.arange(len(sets))
    h_edge, h_against = h_edge.reshape(-1, 3), h_against.reshape(-1, 3)
    h_edge_all = h_edge
    for _ in range(rounds):
        # Summed column by column: sum(axis=1) of a (k, 3) array is ten times slower (225k sets: 2.5 ms).
        row_votes = h_against * tally[h_edge]
        agree = row_votes[:, 0] + row_votes[:, 1]
        agree += row_votes[:, 2]
        # The rows picked by index: a boolean mask on a (k, 3) array takes numpy's slow path.
        decided = np.flatnonzero(agree)
        if len(decided) == 0:
            break
        agree = np.take(agree, decided)
        turn[np.take(open_sets, decided)] = agree < 0
        if len(decided) == len(open_sets):
            break
        # The decided sets' kept faces vote from now on (in the winding kept); the rest vote again.
        kept_way = np.take(h_against, decided, axis=0)
        kept_way *= np.where(agree < 0, np.int32(1), np.int32(-1))[:, None]
        np.add.at(tally, np.take(h_edge, decided, axis=0).ravel(), kept_way.ravel())
        keep_open = np.ones(len(open_sets), bool)
        keep_open[decided] = False
        undecided = np.flatnonzero(keep_open)
        open_sets = np.take(open_sets, undecided)
        h_edge, h_against = np.take(h_edge, undecided, axis=0), np.take(h_against, undecided, axis=0)
    turned = np.zeros(m, bool)
    turned[sets[turn]] = True
    if not turned.any():
        return None
    rows = np.flatnonzero(turn)
    return turned, kept_other, (np.take(own_at.reshape(-1, 3), rows, axis=0).ravel(),
                                np.take(h_edge_all, rows, axis=0).ravel())


def _piece_diagonals(V: np.ndarray, F: np.ndarray, piece: np.ndarray, n_pieces: int) -> np.ndarray:
    """Bounding-box diagonal of every piece (V holds only used vertices)."""
    if n_pieces == 1:
        return np.array([float(np.linalg.norm(V.max(axis=0).astype(np.float64) - V.min(axis=0)))])
    vertex_piece = np.empty(len(V), np.int64)
    vertex_piece[F.ravel()] = np.repeat(piece, 3)  # a vertex shared by two pieces goes to one of them
    order = np.argsort(vertex_piece, kind="stable")
    starts = np.searchsorted(vertex_piece[order], np.arange(n_pieces))
    pts = np.take(V, order, axis=0).astype(np.float64)
    present = np.bincount(vertex_piece, minlength=n_pieces) > 0
    lo = np.minimum.reduceat(pts, np.minimum(starts, len(pts) - 1), axis=0)
    hi = np.maximum.reduceat(pts, np.minimum(starts, len(pts) - 1), axis=0)
    return np.where(present, np.linalg.norm(hi - lo, axis=1), 0.0)
