"""python -m smilepass.mesh repair IN OUT [--report REPORT.json] [--no-preview]

Runs the same pipeline as the web job, synchronously. OUT's extension (.stl or .ply) picks the output
format; previews (unless --no-preview) go next to OUT as NAME.before.png and NAME.after.png, the 3D
viewer's web copies as NAME.before.glb and NAME.after.glb.
Exit status: 0 repaired/ready/check/needs_rescan (the verdict is printed), 2 file refused (one line on
stderr), 1 any other error."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import MeshRejected, RepairOptions, inspect_file, repair


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smilepass.mesh", description="SmilePass scan pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("repair", help="check and repair a scan (STL or PLY)")
    rep.add_argument("input", type=Path)
    rep.add_argument("output", type=Path, help="repaired file; .stl or .ply")
    rep.add_argument("--report", type=Path, help="write the JSON report here")
    rep.add_argument("--no-preview", action="store_true", help="skip the before/after PNG previews")
    rep.add_argument("--options", help="JSON object of RepairOptions fields")
    ins = sub.add_parser("inspect", help="only the structural check")
    ins.add_argument("input", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "inspect":
            info = inspect_file(args.input)
            print(f"{args.input.name}: {info.format}, {info.triangles:,} triangle{'s' if info.triangles != 1 else ''}"
                  + (f", {info.vertices:,} vertices" if info.vertices is not None else ""))
            return 0
        if args.output.suffix.lower() not in (".stl", ".ply"):
            print(f"error: the output file must end in .stl or .ply, not '{args.output.suffix}'.", file=sys.stderr)
            return 1
        options = RepairOptions.from_dict(json.loads(args.options)) if args.options else None
        out = args.output
        name = out.name[: -len(out.suffix)]
        result = repair(args.input, out.parent if str(out.parent) else Path("."), name, options,
                        preview=not args.no_preview, output_path=out)
    except MeshRejected as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI reports any failure in one line
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    r = result.report
    b, a = r["before"], r["after"]
    print(f"{result.verdict}: {result.verdict_reason or 'the scan was already clean.'}")
    print(f"  triangles {b['triangles']:,} -> {a['triangles']:,}; holes filled {r['holes_filled']}, "
          f"left open {r['holes_left_open']}; margin loop {r['margin_loop_edges']:,} edges; "
          f"non-manifold edges {b['non_manifold_edges']} -> {a['non_manifold_edges']}; "
          f"pieces {b['components']} -> {a['components']}")
    print(f"  wrote {result.repaired_path}" + (f", {result.preview_before.name}, {result.preview_after.name}"
                                                if result.preview_before else "")
          + f" in {r['total_seconds']:.2f} s")
    if args.report:
        args.report.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
