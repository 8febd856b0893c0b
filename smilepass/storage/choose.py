"""The storage the settings name: STORAGE_URL empty → the local folder UPLOAD_DIR; s3://bucket/prefix →
that bucket at S3_ENDPOINT_URL (empty: AWS) with S3_REGION and the S3_* keys (empty: boto3's own lookup,
e.g. an instance role). One storage object per process and settings (a forked work horse makes its own:
a boto3 client must not cross a fork)."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from .base import Storage
from .local import LocalStorage
from .s3 import S3Storage

_cache: dict[tuple, Storage] = {}
# S3's rule for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens, a letter or digit at each end.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageSettingsError(ValueError):
    """The storage settings cannot work (a malformed SMILEPASS_STORAGE_URL, say). Said when the web server,
    a worker or `doctor` starts, so that a typo never waits to surface as a failed upload."""


def settings_problem(config: Mapping) -> str | None:
    """What is wrong with the storage settings, in words an administrator can act on; None when nothing."""
    url = str(config.get("STORAGE_URL") or "")
    if not url:
        return None
    parts = urlsplit(url)
    shape = "s3://bucket or s3://bucket/prefix"
    if parts.scheme != "s3":
        return f"SMILEPASS_STORAGE_URL must be empty (the upload folder) or {shape}, not {url!r}"
    if parts.username or parts.password or parts.port or parts.query or parts.fragment or "@" in parts.netloc:
        return (f"SMILEPASS_STORAGE_URL must be {shape}, not {url!r}: keys go in SMILEPASS_S3_ACCESS_KEY_ID and "
                "SMILEPASS_S3_SECRET_ACCESS_KEY, the server's address in SMILEPASS_S3_ENDPOINT")
    if not BUCKET_NAME.fullmatch(parts.netloc):
        return (f"SMILEPASS_STORAGE_URL names the bucket {parts.netloc!r}: a bucket name is 3 to 63 lowercase "
                "letters, digits, dots and hyphens")
    if "//" in parts.path or any(segment in (".", "..") for segment in parts.path.split("/")):
        return f"SMILEPASS_STORAGE_URL has an unusable prefix {parts.path!r} (no empty, . or .. parts)"
    endpoint = str(config.get("S3_ENDPOINT_URL") or "")
    if endpoint:
        where = urlsplit(endpoint)
        if where.scheme not in ("http", "https") or not where.hostname:
            return (f"SMILEPASS_S3_ENDPOINT must be empty (AWS) or the server's address such as "
                    f"https://s3.example.net or http://10.0.0.5:9000, not {endpoint!r}")
    attempts = config.get("S3_ATTEMPTS")
    if attempts not in (None, "") and (not str(attempts).isdigit() or int(attempts) < 1):
        return f"S3_ATTEMPTS must be a whole number of at least 1, not {attempts!r}"
    return None


def check_settings(config: Mapping) -> None:
    problem = settings_problem(config)
    if problem:
        raise StorageSettingsError(problem)


def is_s3(config: Mapping) -> bool:
    return str(config.get("STORAGE_URL") or "").startswith("s3://")


def for_config(config: Mapping) -> Storage:
    url = str(config.get("STORAGE_URL") or "")
    fields = (os.getpid(), url, config.get("UPLOAD_DIR"), config.get("S3_ENDPOINT_URL"), config.get("S3_REGION"),
              config.get("S3_ACCESS_KEY_ID"), config.get("S3_SECRET_ACCESS_KEY"), config.get("STORAGE_WORK_DIR"),
              config.get("S3_ATTEMPTS"))
    found = _cache.get(fields)
    if found is None:
        found = _cache[fields] = _make(config, url)
    return found


def _make(config: Mapping, url: str) -> Storage:
    check_settings(config)
    if not url:
        return LocalStorage(config["UPLOAD_DIR"])
    parts = urlsplit(url)
    return S3Storage(parts.netloc, parts.path.strip("/"), endpoint_url=config.get("S3_ENDPOINT_URL"),
                     region=config.get("S3_REGION"), access_key=config.get("S3_ACCESS_KEY_ID"),
                     secret_key=config.get("S3_SECRET_ACCESS_KEY"), work_root=config.get("STORAGE_WORK_DIR"),
                     attempts=int(config.get("S3_ATTEMPTS") or 3))
