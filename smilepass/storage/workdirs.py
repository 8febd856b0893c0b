"""Work folders: each upload and each repair keeps its temp files in a folder of its own under this host's
work folder (STORAGE_WORK_DIR with a bucket, UPLOAD_DIR/.work with the local folder). The folder's name
says which host and process made it, so that what a killed process left can be told from what a live one
is still writing, and removed by the next process that starts on the same host (a web server, a worker)
or by the worker whose work horse was killed, without waiting an hour.

A folder of another host (a shared disk) or of an older version is judged by its age alone."""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path

WORK = ".work"  # the local storage's work folder inside the upload folder: hidden, never listed or backed up
PREFIX = "smilepass-"
# Older than this, a work folder is abandoned whoever made it: no upload or repair runs this long (a
# repair's job timeout is minutes).
STALE_AFTER = dt.timedelta(hours=1)


def host_name() -> str:
    """This machine's name as it appears in work folder names (no hyphens: they separate the parts)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:60] or "host"


def folder_prefix() -> str:
    """The start of a new work folder's name: host and process id (tempfile adds a random ending)."""
    return f"{PREFIX}{host_name()}-{os.getpid()}-"


def _owner(name: str) -> tuple[str, int] | None:
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX):].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    try:  # a zombie (killed, not yet reaped) is gone as far as its files are concerned
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def abandoned(folder: Path, now: float | None = None) -> bool:
    cutoff = (now if now is not None else time.time()) - STALE_AFTER.total_seconds()
    owner = _owner(folder.name)
    if owner is not None and owner[0] == host_name() and owner[1] != os.getpid() and process_gone(owner[1]):
        return True
    try:
        return folder.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def work_parents(config: Mapping) -> list[Path]:
    """This host's work folders (the local storage's inside the upload folder, and STORAGE_WORK_DIR)."""
    parents = [Path(config["UPLOAD_DIR"]) / WORK]
    if config.get("STORAGE_WORK_DIR"):
        parents.append(Path(config["STORAGE_WORK_DIR"]))
    return parents


def remove_abandoned(config: Mapping, now: float | None = None) -> int:
    """Remove the work folders (and stray files) that killed processes on this host left; how many went."""
    removed = 0
    for parent in dict.fromkeys(work_parents(config)):
        try:
            entries = list(parent.iterdir())
        except OSError:  # none yet, or not ours to read: nothing to clean, and no reason not to start
            continue
        for entry in entries:
            try:
                if not abandoned(entry, now):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
            except OSError:
                continue  # gone meanwhile, or not ours: the periodic sweep tries again
            removed += 1
    return removed
