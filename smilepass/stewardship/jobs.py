"""The retention job RQ runs hourly from `rq cron`."""
from ..jobs import app_context
from .retention import purge_expired_scans


def scan_retention() -> dict:
    """Purge scans past the retention setting, and finish deletions that a killed process left half done
    (stewardship.cleanup)."""
    with app_context() as application:
        return purge_expired_scans(application.config)
