"""Where stored files live: one small interface for every file the portal keeps (screenshots and
thumbnails, scans, repaired files, previews, deletion journals), with two backends:

  local.py   a folder on this server (UPLOAD_DIR), the default and what a single server has always used
  s3.py      an S3-compatible bucket (SMILEPASS_STORAGE_URL=s3://bucket/prefix), so any number of web
             and worker hosts share nothing but PostgreSQL, Redis and the bucket

Keys are relative paths ("a1b2….png", "scans/c3d4….stl"), the same under both backends, so a backup
or a migration moves files between them unchanged. `for_config(app.config)` gives the configured one.
When the storage cannot be reached every call raises StorageUnavailable, which a web request answers
with a 503 that keeps what the user typed (see smilepass/storage/web.py), and a job retries."""
from .base import Storage, StorageUnavailable, StoredObject, valid_key
from .choose import StorageSettingsError, check_settings, for_config, is_s3, settings_problem

__all__ = ["Storage", "StorageSettingsError", "StorageUnavailable", "StoredObject", "check_settings", "for_config",
           "is_s3", "settings_problem", "valid_key"]
