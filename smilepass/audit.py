"""The audit trail: one row per sign-in, lock, reset and change. Rows are only ever added."""
from flask import has_request_context, request
from flask_login import current_user

from .models import AuditLog


def record(action: str, obj=None, detail: str = "", actor=None) -> None:
    if actor is None and has_request_context() and current_user and current_user.is_authenticated:
        actor = current_user._get_current_object()
    object_type = type(obj).__name__.lower() if obj is not None else ""
    object_id = str(obj.id) if obj is not None else ""
    AuditLog.create(
        actor=actor.id if actor else None,
        actor_email=actor.email if actor else "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=detail[:2000],
        ip=(request.remote_addr or "") if has_request_context() else "",
    )
