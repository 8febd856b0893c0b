"""Configuration from environment variables, with defaults a single clinic server can run on."""
import os
import secrets
from pathlib import Path


def _int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder,
    so that sessions survive a restart without anyone having to invent a key."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


def load(instance_path: str) -> dict:
    instance = Path(instance_path)
    idle_minutes = _int("SMILEPASS_SESSION_IDLE_MINUTES", 30)
    image_mb = _int("SMILEPASS_MAX_IMAGE_MB", 10)
    scan_mb = _int("SMILEPASS_MAX_SCAN_MB", 200)
    retry_intervals = os.environ.get("SMILEPASS_SCAN_RETRY_INTERVALS", "10,60")
    return {
        "SECRET_KEY": _secret_key(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'smilepass.db'}",
        # How long a write waits for SQLite's lock before the user is asked to try again (503).
        "SQLITE_BUSY_TIMEOUT_MS": _int("SMILEPASS_SQLITE_BUSY_TIMEOUT_MS", 5000),
        "DB_POOL_SIZE": _int("SMILEPASS_DB_POOL_SIZE", 16),
        "DB_POOL_WAIT_SECONDS": _int("SMILEPASS_DB_POOL_WAIT_SECONDS", 10),
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        "UPLOAD_DIR": os.environ.get("SMILEPASS_UPLOAD_DIR") or str(instance / "uploads"),
        # Stored files: empty keeps them in UPLOAD_DIR; s3://bucket/prefix puts them in an S3-compatible
        # bucket (smilepass/storage/, docs/scale-out.md). Keys empty: boto3 looks for credentials itself.
        "STORAGE_URL": os.environ.get("SMILEPASS_STORAGE_URL", ""),
        "S3_ENDPOINT_URL": os.environ.get("SMILEPASS_S3_ENDPOINT", ""),
        "S3_REGION": os.environ.get("SMILEPASS_S3_REGION", ""),
        "S3_ACCESS_KEY_ID": os.environ.get("SMILEPASS_S3_ACCESS_KEY_ID", ""),
        "S3_SECRET_ACCESS_KEY": os.environ.get("SMILEPASS_S3_SECRET_ACCESS_KEY", ""),
        # Where files on their way to or from the bucket wait (scans being checked, repairs): this host's disk.
        "STORAGE_WORK_DIR": os.environ.get("SMILEPASS_STORAGE_WORK_DIR") or str(instance / "work"),
        # Outside the database and the upload folder on purpose: a restore replaces those, and this
        # file must survive it (see stewardship/ledger.py).
        "ERASURE_LEDGER": str(instance / "erasure-ledger.jsonl"),
        # Where `flask backup` without a PATH writes its archives (and `--keep` prunes, and `doctor` looks).
        "BACKUP_DIR": os.environ.get("SMILEPASS_BACKUP_DIR") or str(instance / "backups"),
        "MAX_IMAGE_BYTES": image_mb * 1024 * 1024,
        "MAX_SCAN_BYTES": scan_mb * 1024 * 1024,
        # A request may carry a scan, an image and the form fields; anything larger is refused
        # before its body is read.
        "MAX_CONTENT_LENGTH": (scan_mb + image_mb + 1) * 1024 * 1024,
        "SCAN_JOB_TIMEOUT": _int("SMILEPASS_SCAN_JOB_TIMEOUT", 900),
        "SCAN_RETRIES": _int("SMILEPASS_SCAN_RETRIES", 2),
        "SCAN_RETRY_INTERVALS": [int(x) for x in retry_intervals.split(",") if x.strip()],
        # How long a queued or running scan may go without news before the sweep checks its job.
        "SCAN_SWEEP_GRACE": _int("SMILEPASS_SCAN_SWEEP_GRACE", 120),
        # Address-space cap of the work horse that repairs a scan: a hostile file cannot take the box.
        "SCAN_MEMORY_LIMIT_MB": _int("SMILEPASS_SCAN_MEMORY_LIMIT_MB", 6144),
        "SESSION_IDLE_SECONDS": idle_minutes * 60,
        "PERMANENT_SESSION_LIFETIME": idle_minutes * 60,
        # The idle check rewrites the session (and so the cookie's expiry) once a minute.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SMILEPASS_HTTPS", "") == "1",
        # Served over HTTPS only (behind a TLS proxy): browsers are told never to try plain HTTP.
        "HTTPS": os.environ.get("SMILEPASS_HTTPS", "") == "1",
        # How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host (1 behind the
        # install's Caddy). 0: those headers are ignored, so a client cannot forge its address.
        "TRUSTED_PROXIES": _int("SMILEPASS_TRUSTED_PROXIES", 0),
        "SESSION_COOKIE_NAME": "smilepass_session",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session, which idles out itself
        "CLINIC_NAME": os.environ.get("SMILEPASS_CLINIC_NAME", "SmilePass"),
        "PAGE_SIZE": _int("SMILEPASS_PAGE_SIZE", 25),
        # Live ticket pages (docs/live.md): how long one event stream lasts before the browser reconnects,
        # and how often it pings.
        "LIVE_STREAM_SECONDS": _int("SMILEPASS_LIVE_STREAM_SECONDS", 300),
        "LIVE_PING_SECONDS": _int("SMILEPASS_LIVE_PING_SECONDS", 10),
        # Streams one web process holds at most (each holds a thread): keep it below gunicorn's --threads
        # (WEB_THREADS), so requests always find a free thread; pages beyond it poll every 15 s instead.
        "LIVE_MAX_STREAMS": _int("SMILEPASS_LIVE_MAX_STREAMS", 48),
        # How often a ticket page asks whether its thread moved (the fallback when no stream reaches it).
        "LIVE_POLL_SECONDS": _int("SMILEPASS_LIVE_POLL_SECONDS", 15),
        "LOCKOUT_ATTEMPTS": 3,
        "LOCKOUT_SECONDS": 20 * 60,
        "RESET_TOKEN_SECONDS": 60 * 60,
        "SMTP_HOST": os.environ.get("SMTP_HOST", ""),
        "SMTP_PORT": _int("SMTP_PORT", 25),
        "SMTP_USER": os.environ.get("SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": os.environ.get("SMTP_STARTTLS", "") == "1",
        "MAIL_FROM": os.environ.get("SMILEPASS_MAIL_FROM", "support@smilepass.local"),
        # The support mailbox replies go to (plus-addressed per ticket and user, docs/mail-in.md); unset,
        # MAIL_FROM's address is used.
        "MAIL_REPLY_ADDRESS": os.environ.get("SMILEPASS_MAIL_REPLY_ADDRESS", ""),
        # Incoming mail (smilepass/mailin): larger mails are refused whole.
        "MAIL_IN_MAX_BYTES": _int("SMILEPASS_MAIL_IN_MAX_MB", 25) * 1024 * 1024,
        # The support mailbox polled every minute over IMAP (mailin/imap.py); no host, no polling.
        "IMAP_HOST": os.environ.get("SMILEPASS_IMAP_HOST", ""),
        "IMAP_PORT": _int("SMILEPASS_IMAP_PORT", 0),  # 0: 993 for ssl, 143 for starttls and plain
        "IMAP_SECURITY": os.environ.get("SMILEPASS_IMAP_SECURITY", "ssl"),  # ssl, starttls, plain (loopback)
        "IMAP_USER": os.environ.get("SMILEPASS_IMAP_USER", ""),
        "IMAP_PASSWORD": os.environ.get("SMILEPASS_IMAP_PASSWORD", ""),
        "IMAP_CA_FILE": os.environ.get("SMILEPASS_IMAP_CA_FILE", ""),  # a private CA's certificate, if any
        # Links in mails. Unset, they point at the port this server listens on (`make run PORT=5077`
        # hands PORT to the web server and the worker alike), so a local trial's links work.
        "BASE_URL": os.environ.get("SMILEPASS_BASE_URL") or f"http://127.0.0.1:{_int('PORT', 5000)}",
    }
