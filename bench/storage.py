"""File storage benchmark: a real SeaweedFS bucket against the local folder, in the same run.

    .venv/bin/python bench/storage.py [--mb 20] [--repeat 3]

For each backend: put (a scan-sized file from disk: one PUT below 8 MB, a multipart upload above),
get (the file back to a local temp file, as a repair worker fetches its input), small puts (a
screenshot and its thumbnail, 200 KB), and a repair job's own round trip (fetch a 300k-triangle arch scan
from the storage into a work folder, repair it with smilepass.mesh, store its outputs: what a worker does
per scan; repairs per minute). Prints figures per backend and the ratio S3/local. SeaweedFS runs on
this machine (tests/s3_server.py), so the numbers show the protocol's and the gateway's cost, not a
network's: compare ratios within one run, not absolute times across machines.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smilepass.mesh import repair  # noqa: E402
from smilepass.storage.local import LocalStorage  # noqa: E402
from smilepass.storage.s3 import S3Storage  # noqa: E402
from tests import s3_server  # noqa: E402
from tests.scanfiles import arch_stl  # noqa: E402


def timed(action, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def measure(storage, source: Path, small: bytes, work: Path, repeat: int) -> dict:
    size_mb = source.stat().st_size / 1e6
    put = timed(lambda: storage.put_file("scans/bench.stl", source), repeat)
    get = timed(lambda: storage.get_to("scans/bench.stl", work / "back.stl"), repeat)
    small_put = timed(lambda: [storage.put_bytes(f"bench-{i}.png", small) for i in range(10)], repeat) / 10
    storage.delete("scans/bench.stl")
    for i in range(10):
        storage.delete(f"bench-{i}.png")
    return {"put MB/s": size_mb / put, "get MB/s": size_mb / get, "small put ms": small_put * 1000}


def repair_job(storage, scan: bytes, repeat: int) -> dict:
    """Fetch, repair and store, as smilepass/scans/repair.py does for one scan."""
    storage.put_bytes("scans/bench-arch.stl", scan)

    def one() -> None:
        with storage.workdir() as folder:
            source = storage.local_path("scans/bench-arch.stl")
            if source is None:
                source = folder / "input.stl"
                storage.get_to("scans/bench-arch.stl", source)
            result = repair(source, folder / "out", "bench-arch")
            for path in dict.fromkeys([result.repaired_path, result.repaired_stl_path, result.preview_before,
                                       result.preview_after]):
                storage.put_file(f"scans/{path.name}", path, move=True)

    seconds = timed(one, repeat)
    for found in list(storage.list("scans/bench-arch")):
        storage.delete(found.key)
    return {"repairs/minute": 60 / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=20, help="size of the scan-sized file (default 20 MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--repair-rows", type=int, default=300, help="arch scan size for the repair job (rows x 500)")
    args = parser.parse_args()
    server, missing = s3_server.start()
    if server is None:
        sys.exit(f"SeaweedFS could not start: {missing}")
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            source = work / "scan.stl"
            source.write_bytes(os.urandom(args.mb * 1024 * 1024))
            small = os.urandom(200 * 1024)
            local = LocalStorage(work / "uploads")
            bucket = S3Storage(server.bucket, "bench", endpoint_url=server.endpoint, region=s3_server.REGION,
                               access_key=s3_server.ACCESS_KEY, secret_key=s3_server.SECRET_KEY, work_root=str(work))
            scan = arch_stl(args.repair_rows, 500)
            results = {"local": measure(local, source, small, work, args.repeat),
                       "s3": measure(bucket, source, small, work, args.repeat)}
            # Alternating, so that a machine busy with something else for a while weighs on both alike.
            for name, storage in (("local", local), ("s3", bucket)):
                results[name].update(repair_job(storage, scan, args.repeat))
    finally:
        server.stop()
    print(f"{args.mb} MB file and a {len(scan) / 1e6:.0f} MB arch scan ({args.repair_rows} x 500 grid), "
          f"median of {args.repeat} runs")
    print(f"{'':14}{'local':>12}{'s3':>12}{'s3/local':>10}")
    for metric in results["local"]:
        a, b = results["local"][metric], results["s3"][metric]
        print(f"{metric:14}{a:12.1f}{b:12.1f}{b / a:10.2f}")


if __name__ == "__main__":
    main()
