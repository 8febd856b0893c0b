"""Scan pipeline benchmark: SmilePass (python -m smilepass.mesh) next to MeshLib and ADMesh, in the same run.

    .venv/bin/python bench/mesh.py [files...] [--repeat N] [--sizes 1000000,2000000,4000000] [--json OUT.json]
                                   [--no-admesh] [--generated-only] [--clean-only] [--no-preview-run]

Default files: the shared test meshes (../shared/testdata/meshes, when present), a generated arch scan
with the defects an upload typically has (holes, debris, duplicated triangles) for every size in
--sizes (binary STL in a temp dir), and a clean one of the first size (ADMesh's fastest case).

Each tool runs in its own subprocess; wall time and peak RSS come from os.wait4 in a small launcher
process (ru_maxrss of the tool alone, not inherited from this process). SmilePass runs with --no-preview
for the comparison; a second run with previews and web copies gives what they add (CPU and wall against
the first run), their stage times (from its report) and the peak memory with them. MeshLib (`pip install
-e .[bench]`; never a runtime dependency) runs its full-quality chain, bench/meshlib_chain.py
(degeneracies, debris, holes but the margin). ADMesh (Debian package) reads only STL, so PLY inputs are
converted to binary STL for the other tools first (not timed). Every output is then measured with the
same topology counter (smilepass.mesh.topology): non-manifold edges, duplicate and degenerate triangles,
pieces, boundary loops, and whether the input's largest loop (an arch scan's gum margin) is still open.
Goals (issue 20), printed per generated scan: wall time <= MeshLib's on the same file, peak memory
<= 250 MB per million triangles, 4M <= 4.4x the 1M time, previews adding <= 1 s at 1M.
The machine may be busy (CI): compare ratios within one run, not absolute times across runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from smilepass.mesh.readers import load_file  # noqa: E402
from smilepass.mesh.topology import Edges, boundary_loop_sizes, duplicate_face_mask, face_shape, manifold_components  # noqa: E402
from smilepass.mesh.weld import weld_exact  # noqa: E402

SHARED = ROOT.parent / "shared" / "testdata" / "meshes"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
ADMESH = shutil.which("admesh")
MESHLIB = importlib.util.find_spec("meshlib") is not None
MESHLIB_CHAIN = str(ROOT / "bench" / "meshlib_chain.py")
GOAL_MB_PER_MILLION, GOAL_GROWTH, GOAL_PREVIEW_S = 250, 4.4, 1.0


# Linux carries a process's RSS high-water mark over fork and exec, so a child started directly from
# this (large) process would report at least our own peak. A tiny launcher (python -S, ~10 MB) forks
# and execs the tool itself and prints the tool's own rusage (what /usr/bin/time -v does).
_LAUNCHER = (
    "import os,sys,time\n"
    "t=time.perf_counter();pid=os.fork()\n"
    "if pid==0:\n"
    "  os.dup2(os.open(os.devnull,os.O_WRONLY),1);os.execvp(sys.argv[2],sys.argv[2:])\n"
    "_,st,ru=os.wait4(pid,0);w=time.perf_counter()-t\n"
    "os.write(int(sys.argv[1]),('%f %d %d %f'%(w,ru.ru_maxrss,os.waitstatus_to_exitcode(st),"
    "ru.ru_utime+ru.ru_stime)).encode())\n"
)


def timed(cmd: list[str]) -> tuple[float, float, int, str, float]:
    """(wall seconds, peak RSS MB, exit status, stderr, CPU seconds of all its threads) of one run of a tool."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(write_end), *cmd], stderr=err,
                                cwd=ROOT, pass_fds=(write_end,))
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            result = pipe.read().split()
        proc.wait()
        err.seek(0)
        message = err.read().decode(errors="replace").strip()
    if len(result) != 4:
        return float("nan"), float("nan"), proc.returncode or 1, message, float("nan")
    return float(result[0]), int(result[1]) / 1024, int(result[2]), message, float(result[3])


def quality(path: Path, margin_edges: int | None) -> dict:
    raw = load_file(path)
    V, inverse, _ = weld_exact(raw.vertices)
    F = inverse.reshape(-1, 3) if raw.faces is None else inverse[raw.faces]
    e = Edges(F, len(V))
    nm = int((e.counts > 2).sum())
    if nm:
        pieces, _ = manifold_components(e, through_non_manifold=True)
    else:
        pieces, _ = manifold_components(e)
    loops = boundary_loop_sizes(e)
    repeated = (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 0] == F[:, 2])
    h1, h2 = e.pairs(only_manifold=True)
    tails = F.ravel()
    q = {
        "triangles": len(F),
        "nm_edges": nm,
        "duplicates": int(duplicate_face_mask(F, len(V)).sum()),
        "degenerate": int((repeated | _thin(V, F)).sum()),
        "inconsistent": int((tails[h1] == tails[h2]).sum()),
        "pieces": int(pieces),
        "loops": len(loops),
        "largest_loop": max(loops) if loops else 0,
    }
    q["margin_open"] = None if not margin_edges else bool(loops and max(loops) >= 0.9 * margin_edges)
    return q


def _thin(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Triangles thinner than 1e-6 of the bounding-box diagonal (no area to speak of)."""
    if len(F) == 0:
        return np.zeros(0, bool)
    diag = float(np.linalg.norm(V.max(axis=0).astype(np.float64) - V.min(axis=0)))
    return face_shape(V, F, 1e-6 * diag)[1]




def generated(sizes: list[int], directory: Path, clean_only: bool = False) -> list[Path]:
    """An arch scan with typical upload defects per size (unless clean_only), and a clean one of the
    first size."""
    from smilepass.mesh.synthetic import arch, bench_scan, write_binary_stl

    jobs = [] if clean_only else [(f"arch_{n // 1000}k_defects.stl", lambda n=n: bench_scan(n)) for n in sizes]
    jobs.append((f"arch_{sizes[0] // 1000}k_clean.stl", lambda: arch(sizes[0], seed=2)))
    out = []
    for name, make in jobs:
        path = directory / name
        V, F = make()
        write_binary_stl(path, V, F)
        del V, F
        out.append(path)
    return out


def bench_file(src: Path, work: Path, repeat: int, previews: bool = True) -> dict:
    name = src.name
    out_dir = work / name.replace(".", "_")
    out_dir.mkdir()
    ext = ".ply" if load_file(src).info.extension == ".ply" else ".stl"
    base = quality(src, None)
    margin = base["largest_loop"]
    row = {"file": name, "bytes": src.stat().st_size, "input": base}

    ours = out_dir / f"smilepass{ext}"
    report = out_dir / "report.json"
    runs = [timed([PYTHON, "-m", "smilepass.mesh", "repair", str(src), str(ours), "--no-preview",
                   "--report", str(report)]) for _ in range(repeat)]
    if runs[-1][2] != 0:
        row["smilepass"] = {"error": runs[-1][3]}
    else:
        rep = json.loads(report.read_text())
        row["smilepass"] = {"wall_s": statistics.median(r[0] for r in runs), "peak_mb": max(r[1] for r in runs),
                            "cpu_s": statistics.median(r[4] for r in runs), "verdict": rep["verdict"],
                            "stage_seconds": rep["stage_seconds"],
                            "quality": quality(ours, margin)}
    if runs[-1][2] == 0 and previews:
        pv = timed([PYTHON, "-m", "smilepass.mesh", "repair", str(src), str(out_dir / f"preview{ext}"),
                    "--report", str(out_dir / "preview.json")])
        prep = json.loads((out_dir / "preview.json").read_text())
        row["smilepass"]["preview_s"] = prep["stage_seconds"].get("rendering")
        row["smilepass"]["with_preview_wall_s"] = pv[0]
        row["smilepass"]["with_preview_peak_mb"] = pv[1]
        row["smilepass"]["with_preview_cpu_s"] = pv[4]
        # The 3D viewer's copies (.glb) are made with the previews: their stage and the repaired one's size.
        row["smilepass"]["web_copy_s"] = prep["stage_seconds"].get("web copy")
        web_after = out_dir / "preview.after.glb"
        row["smilepass"]["web_copy_mb"] = web_after.stat().st_size / 1e6 if web_after.exists() else None

    stl_in = src
    if ext == ".ply" and (ADMESH or MESHLIB):  # convert (untimed) with the same numpy writer
        from smilepass.mesh.synthetic import write_binary_stl

        raw = load_file(src)
        stl_in = out_dir / "input_as.stl"
        write_binary_stl(stl_in, raw.vertices, raw.faces)
        del raw
    if MESHLIB:
        ml_out = out_dir / "meshlib.stl"
        ml_report = out_dir / "meshlib.json"
        runs = [timed([PYTHON, MESHLIB_CHAIN, str(stl_in), str(ml_out), "--report", str(ml_report)])
                for _ in range(repeat)]
        if runs[-1][2] != 0 or not ml_out.exists():
            row["meshlib"] = {"error": runs[-1][3][-200:] or f"exit {runs[-1][2]}"}
        else:
            try:
                q = quality(ml_out, margin)
            except Exception as exc:  # noqa: BLE001 - report what the other tool wrote
                q = {"error": str(exc)}
            row["meshlib"] = {"wall_s": statistics.median(r[0] for r in runs), "peak_mb": max(r[1] for r in runs),
                              "cpu_s": statistics.median(r[4] for r in runs),
                              "stage_seconds": json.loads(ml_report.read_text())["stage_seconds"], "quality": q}
    if ADMESH:
        adm_in = stl_in
        adm_out = out_dir / "admesh.stl"
        cmd = [ADMESH, f"--write-binary-stl={adm_out}", "--exact", "--nearby", "--remove-unconnected",
               "--fill-holes", "--normal-directions", "--normal-values", str(adm_in)]
        runs = [timed(cmd) for _ in range(repeat)]
        if runs[-1][2] != 0 or not adm_out.exists():
            row["admesh"] = {"error": runs[-1][3][-200:] or f"exit {runs[-1][2]}"}
        else:
            try:
                q = quality(adm_out, margin)
            except Exception as exc:  # noqa: BLE001 - report what the other tool wrote
                q = {"error": str(exc)}
            row["admesh"] = {"wall_s": statistics.median(r[0] for r in runs), "peak_mb": max(r[1] for r in runs),
                             "cpu_s": statistics.median(r[4] for r in runs), "quality": q}
    return row


def fmt_quality(q: dict) -> str:
    if "error" in q:
        return q["error"][:60]
    margin = {None: "n/a", True: "open", False: "CLOSED"}[q["margin_open"]]
    return (f"{q['triangles']:>9,} {q['nm_edges']:>5} {q['duplicates']:>5} {q['degenerate']:>5} "
            f"{q['inconsistent']:>5} {q['pieces']:>6} {q['loops']:>5}  {margin}")


def print_table(rows: list[dict]) -> None:
    head = (f"{'file':<34} {'tool':<10} {'wall s':>7} {'peak MB':>8}  {'tris':>9} {'NM':>5} {'dup':>5} "
            f"{'degen':>5} {'flip':>5} {'pieces':>6} {'loops':>5}  margin")
    print(head)
    print("-" * len(head))
    for row in rows:
        print(f"{row['file'][:34]:<34} {'input':<10} {'':>7} {'':>8}  {fmt_quality(row['input'])}")
        for tool in ("smilepass", "meshlib", "admesh"):
            r = row.get(tool)
            if not r:
                continue
            if "error" in r:
                print(f"{'':<34} {tool:<10} error: {r['error'][:80]}")
                continue
            print(f"{'':<34} {tool:<10} {r['wall_s']:>7.2f} {r['peak_mb']:>8.0f}  {fmt_quality(r['quality'])}")
        s = row.get("smilepass", {})
        if "wall_s" in s:
            parts = []
            for tool in ("meshlib", "admesh"):
                other = row.get(tool, {})
                if "wall_s" in other:
                    row[f"ratio_{tool}"] = s["wall_s"] / other["wall_s"]
                    parts.append(f"{row[f'ratio_{tool}']:.2f}x {tool}")
            if "cpu_s" in row.get("meshlib", {}):
                parts.append(f"CPU {s['cpu_s']:.2f} s vs meshlib {row['meshlib']['cpu_s']:.2f} s")
            print(f"{'':<34} {'ratio':<10} {', '.join(parts) or '-'}; verdict {s['verdict']}"
                  + (f"; preview +{s['preview_s']:.2f} s (peak {s['with_preview_peak_mb']:.0f} MB with them); "
                     f"web copy +{s.get('web_copy_s') or 0:.2f} s ({s.get('web_copy_mb') or 0:.2f} MB); "
                     f"the whole run with both: +{_extra_cpu(s):.2f} CPU s, +{_extra_wall(s):.2f} s wall"
                     if "preview_s" in s else ""))
            print(f"{'':<34} {'stages':<10} smilepass "
                  + ", ".join(f"{k} {v:.2f}" for k, v in s["stage_seconds"].items()))
            if "stage_seconds" in row.get("meshlib", {}):
                print(f"{'':<34} {'':<10} meshlib   "
                      + ", ".join(f"{k} {v:.2f}" for k, v in row["meshlib"]["stage_seconds"].items()))
        print()


def _extra_cpu(s: dict) -> float:
    """What the previews and web copies add: the run with them against the run without (one run each, so
    noisy on a busy machine; their own stages' times are in the report)."""
    return s["with_preview_cpu_s"] - s["cpu_s"]


def _extra_wall(s: dict) -> float:
    return s["with_preview_wall_s"] - s["wall_s"]


def print_goals(rows: list[dict], generated_names: set[str]) -> None:
    """Issue 20's goals for the generated scans with defects."""
    by_size = {}
    for row in rows:
        s = row.get("smilepass", {})
        if row["file"] not in generated_names or "_defects" not in row["file"] or "wall_s" not in s:
            continue
        n = row["input"]["triangles"]
        by_size[n] = row
        million = n / 1e6
        ml = row.get("meshlib", {})
        if "wall_s" in ml:
            time_part = (f"time {'met' if s['wall_s'] <= ml['wall_s'] else 'NOT met'} "
                         f"({s['wall_s']:.2f} s vs MeshLib {ml['wall_s']:.2f} s: {s['wall_s'] / ml['wall_s']:.2f}x; "
                         f"CPU {s['cpu_s']:.2f} s vs {ml['cpu_s']:.2f} s: {s['cpu_s'] / ml['cpu_s']:.2f}x)")
        else:
            time_part = "time not compared (no meshlib)"
        limit = GOAL_MB_PER_MILLION * million
        print(f"Goal for {row['file']} ({n:,} triangles): <= MeshLib's wall time: {time_part}; "
              f"<= {limit:.0f} MB peak: {'met' if s['peak_mb'] <= limit else 'NOT met'} ({s['peak_mb']:.0f} MB, "
              f"{s['peak_mb'] / million:.0f} MB per million)"
              + (f"; previews + web copies +{_extra_cpu(s):.2f} CPU s, +{_extra_wall(s):.2f} s wall"
                 if "preview_s" in s else "")
              + (f" ({'met' if max(_extra_cpu(s), _extra_wall(s)) <= GOAL_PREVIEW_S else 'NOT met'} at 1M)"
                 if "preview_s" in s and 0.9 <= million <= 1.1 else ""))
    sizes = sorted(by_size)
    if len(sizes) >= 2:
        small, big = by_size[sizes[0]], by_size[sizes[-1]]
        factor = sizes[-1] / sizes[0]
        growth = big["smilepass"]["wall_s"] / small["smilepass"]["wall_s"]
        cpu_growth = big["smilepass"]["cpu_s"] / small["smilepass"]["cpu_s"]
        allowed = GOAL_GROWTH * factor / 4
        print(f"Growth {sizes[0]:,} -> {sizes[-1]:,} triangles ({factor:.1f}x): SmilePass {growth:.2f}x "
              f"(CPU {cpu_growth:.2f}x), "
              f"goal <= {allowed:.2f}x: {'met' if growth <= allowed else 'NOT met'}"
              + (f"; MeshLib {big['meshlib']['wall_s'] / small['meshlib']['wall_s']:.2f}x"
                 if "wall_s" in big.get("meshlib", {}) and "wall_s" in small.get("meshlib", {}) else ""))
        print_primitive_growth(sizes[0], sizes[-1])


def primitive_growth(small: int, big: int, repeat: int = 5) -> dict[str, float]:
    """How numpy's own steps grow on this machine from one scan size to the other (CPU time, best of
    `repeat`), on arrays as long as the scans' half-edges (int32, 3 per triangle): what "linear" can
    mean for a pipeline made of them. A gather whose indices stay near their position (faces in
    spatial order), one whose indices are random (a hash table, a shuffled file), a sort, an argsort."""
    rng = np.random.default_rng(0)

    def best(step) -> float:
        times = []
        for _ in range(repeat):
            start = time.process_time()
            step()
            times.append(time.process_time() - start)
        return min(times)

    def costs_at(n: int) -> dict[str, float]:
        values = np.arange(n, dtype=np.int32)
        scattered = rng.integers(0, n, n).astype(np.int32)
        nearby = np.clip(np.arange(n) + rng.integers(-512, 512, n), 0, n - 1).astype(np.int32)
        out = np.empty(n, np.int32)
        return {"gather nearby": best(lambda: np.take(values, nearby, out=out)),
                "gather random": best(lambda: np.take(values, scattered, out=out)),
                "sort": best(lambda: np.sort(scattered)),
                "argsort": best(lambda: np.argsort(scattered))}

    costs = {n: costs_at(n) for n in (3 * small, 3 * big)}
    return {name: costs[3 * big][name] / costs[3 * small][name] for name in costs[3 * small]}


def print_primitive_growth(small: int, big: int) -> None:
    growth = primitive_growth(small, big)
    print(f"numpy's own steps on {3 * small:,} -> {3 * big:,} int32 (this machine, same run): "
          + ", ".join(f"{name} {factor:.2f}x" for name, factor in growth.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and file (median time)")
    parser.add_argument("--sizes", default="1000000,2000000,4000000",
                        help="comma-separated triangle counts of the generated scans")
    parser.add_argument("--triangles", type=int, help="one generated size (same as --sizes N)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--no-admesh", action="store_true", help="skip ADMesh (minutes at 4M on a loaded machine)")
    parser.add_argument("--generated-only", action="store_true", help="skip the shared test meshes")
    parser.add_argument("--no-preview-run", action="store_true", help="skip the second SmilePass run with previews")
    parser.add_argument("--clean-only", action="store_true",
                        help="of the generated scans, only the clean arch of the first size (implies --generated-only)")
    args = parser.parse_args()
    sizes = [args.triangles] if args.triangles else [int(x) for x in args.sizes.split(",") if x.strip()]
    global ADMESH
    if args.no_admesh:
        ADMESH = None
    elif not ADMESH:
        print("admesh not found (Debian package 'admesh'): not compared", file=sys.stderr)
    if not MESHLIB:
        print("meshlib not installed (pip install -e '.[bench]'): not compared", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="smilepass-bench-") as tmp:
        work = Path(tmp)
        files = list(args.files)
        generated_paths = []
        if not files:
            if SHARED.is_dir() and not (args.generated_only or args.clean_only):
                files = sorted(p for p in SHARED.iterdir() if p.suffix.lower() in (".stl", ".ply"))
            t = time.perf_counter()
            generated_paths = generated(sizes, work, clean_only=args.clean_only)
            print(f"generated {', '.join(p.name for p in generated_paths)} in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr)
            files += generated_paths
        rows = []
        for src in files:
            print(f"... {src.name}", file=sys.stderr)
            rows.append(bench_file(src, work, args.repeat, previews=not args.no_preview_run))
            if args.json:  # after every file: a long run stopped halfway keeps what it measured
                args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"\nSmilePass scan pipeline vs MeshLib and ADMesh ({time.strftime('%Y-%m-%d %H:%M')}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}); NM = non-manifold edges, flip = edges walked "
              "the same way by both faces, margin = input's largest boundary loop still open\n")
        print_table(rows)
        print_goals(rows, {p.name for p in generated_paths})
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

