"""The storage the settings name: STORAGE_URL empty → the local folder UPLOAD_DIR; s3://bucket/prefix →
that bucket at S3_ENDPOINT_URL (empty: AWS) with S3_REGION and the S3_* keys (empty: boto3's own lookup,
e.g. an instance role). One storage object per process and settings (a forked work horse makes its own:
a boto3 client must not cross a fork)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from .base import Storage
from .local import LocalStorage
from .s3 import S3Storage

_cache: dict[tuple, Storage] = {}


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
    if not url:
        return LocalStorage(config["UPLOAD_DIR"])
    parts = urlsplit(url)
    if parts.scheme != "s3" or len(parts.netloc) < 3:
        raise ValueError(f"SMILEPASS_STORAGE_URL must be empty or s3://bucket[/prefix], not {url!r}")
    return S3Storage(parts.netloc, parts.path.strip("/"), endpoint_url=config.get("S3_ENDPOINT_URL"),
                     region=config.get("S3_REGION"), access_key=config.get("S3_ACCESS_KEY_ID"),
                     secret_key=config.get("S3_SECRET_ACCESS_KEY"), work_root=config.get("STORAGE_WORK_DIR"),
                     attempts=int(config.get("S3_ATTEMPTS") or 3))
