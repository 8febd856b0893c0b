"""What the portal needs beyond its database and queue: an SMTP server that answers, links in mails that
lead to this server over https, and Open3D for the scan previews."""
from __future__ import annotations

import ipaddress
import smtplib
import subprocess
import sys
from urllib.parse import urlsplit

from flask_babel import gettext

from .record import Check, Status, first_line

SMTP_TIMEOUT_SECONDS = 10
OPEN3D_TIMEOUT_SECONDS = 30
# Run by a fresh interpreter: Open3D (OpenMP threads, a large native library) must never be imported into
# the web server's or the worker's own process, where a later fork would inherit its threads. Besides the
# import it builds the ray-casting scene the scan previews use (smilepass/mesh/render.py).
OPEN3D_PROBE = ("import open3d as o3d; "
                "o3d.t.geometry.RaycastingScene().add_triangles("
                "o3d.t.geometry.TriangleMesh.from_legacy(o3d.geometry.TriangleMesh.create_box())); "
                "print(o3d.__version__)")


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


def check_open3d(probe) -> Check:
    name = "Open3D"
    try:
        done = subprocess.run([sys.executable, "-c", OPEN3D_PROBE], capture_output=True, text=True,
                              timeout=OPEN3D_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return Check(name, Status.FAIL, gettext("not imported within %(seconds)s s: scan previews will time out",
                                                seconds=OPEN3D_TIMEOUT_SECONDS))
    except OSError as exc:
        return Check(name, Status.FAIL, first_line(exc))
    if done.returncode != 0:
        error = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "")
        return Check(name, Status.FAIL, gettext("cannot be used, so scans get no previews: %(error)s",
                                                error=error[:300] or done.returncode))
    return Check(name, Status.OK, gettext("Open3D %(version)s imports and ray-casts (scan previews)",
                                          version=done.stdout.strip()))
