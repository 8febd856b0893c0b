"""Files in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph, Garage …) through boto3.

Large files go up in 8 MB parts (a multipart upload), so no more than one part is ever in memory; an
upload that fails is aborted, so the bucket never holds half an object. The bucket stays private:
browsers get files through the app, which checks access and writes the audit row first."""
from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .base import Storage, StorageUnavailable, StoredObject, check_key, valid_key
from .workdirs import folder_prefix

PART_SIZE = 8 * 1024 * 1024
MISSING = {"NoSuchKey", "404", "NotFound"}


def _unavailable(exc: Exception, where: str) -> StorageUnavailable:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        detail = f"{error.get('Code', '?')}: {error.get('Message', '')}".strip(": ")
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return StorageUnavailable(f"{where}: {detail}"[:300])


class _Body:
    """The body of a GET as a plain binary file object that closes its connection."""

    def __init__(self, body):
        self.body = body

    def read(self, size: int = -1) -> bytes:
        try:
            return self.body.read(None if size is None or size < 0 else size)
        except (BotoCoreError, OSError) as exc:
            raise StorageUnavailable(f"reading a stored file broke off: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class S3Storage(Storage):
    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, work_root: str | None = None,
                 attempts: int = 3, connect_timeout: float = 5, read_timeout: float = 60):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.work_root = work_root
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=region or None, aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                          retries={"max_attempts": attempts, "mode": "standard"},
                          s3={"addressing_style": "path"} if self.endpoint_url else {}))

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1:] if self.prefix else name

    def put_stream(self, key: str, stream, size_hint: int | None = None) -> int:
        name = self._name(key)
        first = stream.read(PART_SIZE)
        try:
            if len(first) < PART_SIZE:
                self.client.put_object(Bucket=self.bucket, Key=name, Body=first)
                return len(first)
            return self._multipart(name, first, stream)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, f"storing {key}") from exc

    def _multipart(self, name: str, first: bytes, stream) -> int:
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        parts, size, number, data = [], 0, 1, first
        try:
            while data:
                answer = self.client.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                                 PartNumber=number, Body=data)
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                size += len(data)
                number += 1
                data = stream.read(PART_SIZE)
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            # No half object left behind (nor its parts, which cost space until aborted).
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except (BotoCoreError, ClientError):
                pass  # the bucket's lifecycle rule for incomplete uploads is the last resort
            raise
        return size

    def open(self, key: str):
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(key) from None
            raise _unavailable(exc, f"reading {key}") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"reading {key}") from exc
        return _Body(answer["Body"])

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, f"deleting {key}") from exc
        return existed

    def stat(self, key: str) -> StoredObject | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise _unavailable(exc, f"looking up {key}") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"looking up {key}") from exc
        return StoredObject(key, answer["ContentLength"], answer["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    key = self._key(item["Key"])
                    if valid_key(key):
                        found.append(StoredObject(key, item["Size"], item["LastModified"].timestamp()))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, "listing the bucket") from exc
        return iter(sorted(found, key=lambda o: o.key))

    @contextmanager
    def workdir(self) -> Iterator[Path]:
        if self.work_root:
            Path(self.work_root).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_root, prefix=folder_prefix()) as folder:
            yield Path(folder)

    def probe(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, f"the bucket {self.bucket}") from exc
        key = f".probe-{secrets.token_hex(6)}"
        name = f"{self.prefix}/{key}" if self.prefix else key
        try:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=b"probe")
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read()
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, "a probe object") from exc
        if body != b"probe":
            raise StorageUnavailable("a probe object read back differently")
