"""A real Dovecot IMAP server for a test: started in the foreground (no systemd) on a free port, with a
throwaway config, one passwd-file user and Maildir storage, all under the test's tmp_path. Plaintext
login over loopback, or STARTTLS with a certificate the test makes. Debian package: dovecot-imapd."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .conftest import free_port

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "support@clinic.example", "imap-test-Pass-2026"


@dataclass
class Dovecot:
    port: int
    user: str
    password: str
    process: subprocess.Popen
    root: Path
    ca_file: str = ""

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def available() -> str:
    """"" when Dovecot can run here, else why not."""
    if not Path(DOVECOT).exists():
        return "dovecot-imapd is not installed"
    return ""


def _owner() -> tuple[str, int, int]:
    """Who owns the mail: this user, or Dovecot's own user when the tests run as root (Dovecot never
    touches mail as root)."""
    entry = pwd.getpwnam("dovecot") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _config(root: Path, port: int, tls: tuple[Path, Path] | None) -> str:
    name, uid, gid = _owner()
    # As root Dovecot drops privileges to its own users (the Debian package creates them); as anyone
    # else it runs everything as that user.
    internal = "dovecot" if os.getuid() == 0 else name
    login = "dovenull" if os.getuid() == 0 else name
    ssl = (f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\n" if tls else "ssl = no\n")
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
default_internal_user = {internal}
default_login_user = {login}
default_internal_group = {"dovecot" if os.getuid() == 0 else name}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
mail_location = maildir:{root}/mail/%n
first_valid_uid = {uid}
first_valid_gid = {gid}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def start(tls: tuple[Path, Path] | None = None, ca_file: str = "") -> Dovecot:
    """Start Dovecot in a directory of its own (pytest's tmp_path is private to the test's user, and
    Dovecot's unprivileged processes must reach into it); raises RuntimeError when it does not come up."""
    root = Path(tempfile.mkdtemp(prefix="smilepass-dovecot-"))
    root.chmod(0o711)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    _, uid, gid = _owner()
    for sub in ("mail", "home"):
        os.chown(root / sub, uid, gid)
    (root / "passwd").touch(mode=0o644)
    port = free_port()
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    config = root / "dovecot.conf"
    config.write_text(_config(root, port, tls))
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    server = Dovecot(port, USER, PASSWORD, process, root, ca_file)
    for _ in range(200):
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") + server.log()
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"dovecot exited: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                if probe.recv(200).startswith(b"* OK"):
                    return server
        except OSError:
            time.sleep(0.05)
    stop(server, keep=True)
    raise RuntimeError(f"dovecot did not answer on port {port}\n{server.log()}")


def stop(server: Dovecot, keep: bool = False) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=30)
    if not keep:
        shutil.rmtree(server.root, ignore_errors=True)
