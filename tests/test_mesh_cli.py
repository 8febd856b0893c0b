"""python -m smilepass.mesh repair IN OUT [--report R.json] [--no-preview]: exit codes 0 / 2 / 1."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smilepass.mesh import synthetic as syn

from .meshgen import binary_stl_bytes, topology, write_binary_stl

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "smilepass.mesh", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    V, F = syn.arch(6_000, seed=11)
    F = syn.punch_hole(V, F, syn.interior_vertex(V, F, np.random.default_rng(0)), 0.7)
    return write_binary_stl(tmp_path_factory.mktemp("cli") / "upper.stl", V, F)


def test_repair_succeeds_with_report_and_previews(tmp_path, scan):
    out = tmp_path / "fixed.stl"
    done = cli("repair", scan, out, "--report", tmp_path / "r.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("repaired: Filled 1 hole.\n")
    assert len(done.stdout.splitlines()) <= 4
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "repaired" and report["holes_filled"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fixed.after.glb", "fixed.after.png", "fixed.before.glb",
                                                          "fixed.before.png", "fixed.stl", "r.json"]
    assert topology(out)["loop_edges"] == [report["margin_loop_edges"]]


def test_output_extension_picks_the_format_and_no_preview_skips_images(tmp_path, scan):
    out = tmp_path / "fixed.ply"
    done = cli("repair", scan, out, "--no-preview")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert [p.name for p in tmp_path.iterdir()] == ["fixed.ply"]


def optional_libraries_loaded(scan, out_dir, preview: bool) -> list[str]:
    """Which of scipy, PIL, pyfqmr and Open3D a fresh interpreter has loaded after repairing the scan."""
    code = (
        "import sys\n"
        "from smilepass.mesh import repair\n"
        f"result = repair({str(scan)!r}, {str(out_dir)!r}, 'scan', preview={preview!r})\n"
        "assert result.verdict in ('repaired', 'ready'), result.verdict\n"
        "assert (result.web_after is not None) == (result.preview_after is not None) == " f"{preview!r}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'PIL', 'pyfqmr', 'open3d'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_repair_without_previews_imports_none_of_their_libraries(tmp_path, scan):
    """scipy, PIL and pyfqmr serve the previews and web copies only: a repair without them (the
    command line's --no-preview, a bench run) does not pay their 0.6-0.9 s of start-up."""
    assert optional_libraries_loaded(scan, tmp_path, preview=False) == []


def test_previews_of_a_scan_that_needs_no_decimation_import_no_scipy_or_pyfqmr(tmp_path, scan):
    """Only a scan decimated for its web copy needs pyfqmr and scipy.spatial (0.55 s to import): a small
    scan (taken as it is) and a large one (clustered) are drawn and copied with numpy and PIL alone."""
    assert optional_libraries_loaded(scan, tmp_path / "small", preview=True) == ["PIL"]
    V, F = syn.arch(400_000)  # over CLUSTER_ABOVE x MAX_TRIANGLES faces: clustered, not decimated
    large = write_binary_stl(tmp_path / "large.stl", V, F)
    assert optional_libraries_loaded(large, tmp_path / "large", preview=True) == ["PIL"]


def test_refused_file_exits_2_with_one_line(tmp_path, scan):
    bad = tmp_path / "cut.stl"
    bad.write_bytes(scan.read_bytes()[:3000])
    done = cli("repair", bad, tmp_path / "out.stl")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("refused: Binary STL is truncated: the header announces ")
    assert done.stdout == "" and not (tmp_path / "out.stl").exists()

    (tmp_path / "page.stl").write_text("<html><body>Login required</body></html>\n")
    done = cli("repair", tmp_path / "page.stl", tmp_path / "out.stl")
    assert done.returncode == 2 and done.stderr.startswith("refused: This file is an HTML page")


def test_other_errors_exit_1_with_one_line(tmp_path, scan):
    done = cli("repair", scan, tmp_path / "out.obj")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "must end in .stl or .ply" in done.stderr
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    done = cli("repair", scan, blocker / "out.stl")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")


def test_inspect_command(tmp_path):
    path = tmp_path / "t.stl"
    path.write_bytes(binary_stl_bytes(np.zeros((3, 3), np.float32) + np.eye(3, dtype=np.float32)))
    done = cli("inspect", path)
    assert done.returncode == 0 and done.stdout.strip() == "t.stl: stl-binary, 1 triangle"
