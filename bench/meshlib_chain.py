"""The full-quality MeshLib repair chain bench/mesh.py times next to SmilePass (bench only: meshlib is
the optional extra `bench`, never a runtime dependency).

    .venv/bin/python bench/meshlib_chain.py IN.stl OUT.stl [--report OUT.json]

Does what SmilePass's repair does, with MeshLib's own tools and the same thresholds (issue 20's
"full quality" chain): load (welds equal vertices and builds a half-edge topology; non-manifold
vertices are split on the way), fix degenerate faces by decimation only (tiny edges below 1e-6 of the
diagonal; no remeshing: SmilePass never subdivides either), merge the
split vertex copies again (the rebuild drops faces that would be non-manifold), drop debris (pieces
below 1 % of the largest one's area), fill every hole but the gum margin (the longest loop) whose
perimeter is at most 0.2 of the diagonal, save. Prints nothing; --report writes the seconds per step as JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import meshlib.mrmeshpy as mr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--report")
    args = parser.parse_args()
    seconds = {}
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[name] = round(now - t, 4)
        t = now

    mesh = mr.loadMesh(args.input)
    step("reading")
    diag = mesh.computeBoundingBox().diagonal()
    params = mr.FixMeshDegeneraciesParams()
    params.tinyEdgeLength = 1e-6 * diag
    params.maxDeviation = 1e-6 * diag
    # Decimation only: the default mode (Remesh) subdivides around what it could not collapse and, on
    # the generated 2M/4M arches, grew them to 5M/7M triangles in minutes (measured 2026-12-06: the
    # faces were added by this step, not by the hole filling). SmilePass collapses or drops a
    # degenerate face and never subdivides, so decimation is the like-for-like chain.
    params.mode = mr.FixMeshDegeneraciesParams.Mode.Decimate
    mr.fixMeshDegeneracies(mesh, params)
    # Loading split non-manifold vertices into copies: merge them again (and float-noise cracks, with
    # SmilePass's weld tolerance); the rebuild drops the faces that would make a non-manifold edge,
    # and their holes are filled below like any other.
    mr.uniteCloseVertices(mesh, 1e-5 * diag, True)
    largest = mr.MeshComponents.getLargestComponentArea(mesh) if hasattr(mr.MeshComponents,
                                                                         "getLargestComponentArea") else None
    if largest is None:
        largest = mesh.area()
    keep = mr.MeshComponents.getLargeByAreaComponents(mr.MeshPart(mesh), 0.01 * largest, None)
    drop = mesh.topology.getValidFaces() - keep
    mesh.topology.deleteFaces(drop)
    mesh.pack()
    step("cleaning")
    holes = list(mesh.topology.findHoleRepresentiveEdges())
    perimeters = [mesh.holePerimeter(e) for e in holes]
    margin = max(range(len(holes)), key=perimeters.__getitem__) if holes else -1
    fill = mr.FillHoleParams()
    for i, (e, length) in enumerate(zip(holes, perimeters, strict=True)):
        if i != margin and length <= 0.2 * diag:
            mr.fillHole(mesh, e, fill)
    step("filling holes")
    mr.saveMesh(mesh, args.output)
    step("saving")
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"stage_seconds": seconds, "faces": int(mesh.topology.numValidFaces()),
                       "holes": len(holes)}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
