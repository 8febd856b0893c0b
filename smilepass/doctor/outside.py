"""What the portal needs beyond its database and queue: an SMTP server that answers, links in mails that
lead to this server over https, and the scan pipeline (repair and previews, numpy and SciPy)."""
from __future__ import annotations

import ipaddress
import smtplib
import subprocess
import sys
from urllib.parse import urlsplit

from flask_babel import gettext

from .record import Check, Status, first_line

SMTP_TIMEOUT_SECONDS = 10
SCAN_REPAIR_TIMEOUT_SECONDS = 60
# Run by a fresh interpreter, as the scans worker runs it: a small generated arch scan repaired with its
# previews and web copies in a temporary folder. It proves numpy, SciPy and Pillow load and the pipeline
# runs on this machine, without touching a stored scan. Its last line: the time it took and numpy's version.
SCAN_REPAIR_PROBE = """
import tempfile, time
from pathlib import Path
import numpy
from smilepass.mesh import repair
from smilepass.mesh.synthetic import arch, write_binary_stl
with tempfile.TemporaryDirectory() as folder:
    scan = Path(folder) / "probe.stl"
    write_binary_stl(scan, *arch(2_000))
    started = time.perf_counter()
    result = repair(scan, folder, "probe")
    assert result.preview_after is not None and result.preview_after.exists(), "no preview was drawn"
    print(f"{time.perf_counter() - started:.2f} {numpy.__version__}")
"""


def check_mail(probe) -> Check:
    name = gettext("Mail")
    config = probe.config
    if not config.get("SMTP_HOST"):
        return Check(name, Status.WARN, gettext("no SMTP server is set (SMTP_HOST): mail waits in the outbox "
                                                "(Administration → Outbox)"))
    server = f"{config['SMTP_HOST']}:{config['SMTP_PORT']}"
    steps = ["EHLO"]
    try:
        with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
                smtp.ehlo()
                steps.append("STARTTLS")
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
                steps.append("login")
            code, _ = smtp.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, "NOOP refused")
            steps.append("NOOP")
    except (OSError, smtplib.SMTPException) as exc:
        return Check(name, Status.FAIL, gettext("the SMTP server %(server)s fails: %(error)s; mail waits in the "
                                                "outbox until it answers", server=server, error=first_line(exc)))
    return Check(name, Status.OK, gettext("the SMTP server %(server)s answers (%(steps)s)", server=server,
                                          steps=", ".join(steps)))


def _local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(probe) -> Check:
    name = gettext("Links in mails")
    url = probe.config.get("BASE_URL") or ""
    parts = urlsplit(url)
    # Unset, SMILEPASS_BASE_URL defaults to http://127.0.0.1:PORT (config.py), which the next test catches.
    if parts.scheme != "https" or not parts.hostname:
        return Check(name, Status.WARN, gettext("%(url)s is not https: set SMILEPASS_BASE_URL to the "
                                                "portal's https address", url=url))
    if _local(parts.hostname):
        return Check(name, Status.WARN, gettext("%(url)s leads to this machine only: set "
                                                "SMILEPASS_BASE_URL to the portal's address", url=url))
    return Check(name, Status.OK, gettext("start with %(url)s", url=url))


def check_scan_repair(probe) -> Check:
    name = gettext("Scan repair")
    try:
        done = subprocess.run([sys.executable, "-c", SCAN_REPAIR_PROBE], capture_output=True, text=True,
                              timeout=SCAN_REPAIR_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return Check(name, Status.FAIL, gettext("a small test scan was not repaired within %(seconds)s s: "
                                                "uploaded scans will time out", seconds=SCAN_REPAIR_TIMEOUT_SECONDS))
    except OSError as exc:
        return Check(name, Status.FAIL, first_line(exc))
    if done.returncode != 0:
        error = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "")
        return Check(name, Status.FAIL, gettext("a small test scan could not be repaired, so uploaded scans will "
                                                "fail: %(error)s", error=error[:300] or done.returncode))
    seconds, numpy_version = done.stdout.split()[-2:]
    return Check(name, Status.OK, gettext("a small test scan was repaired with previews in %(seconds)s s "
                                          "(numpy %(version)s)", seconds=seconds, version=numpy_version))
