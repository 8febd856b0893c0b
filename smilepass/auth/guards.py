"""Who may open a page, and which object an id in the URL may fetch: one place, so that every view
answers alike. A page or an object that is not the user's answers 404, the same as one that does not
exist, so nobody learns what exists; the few actions a user can see but not use may answer 403."""
from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from ..models import Role

# Support staff and admins: everyone who works the queue.
STAFF = (Role.SUPPORT, Role.ADMIN)
# Ids are signed 64-bit integers in both databases; a larger number in a URL names nothing (and
# would make the database driver raise instead of finding no row).
LARGEST_ID = 2**63 - 1


def require_role(*roles, refused: int = 404) -> None:
    """Abort with `refused` unless the signed-in user holds one of the roles (Role or EscalationRole):
    for views that must fetch their object first, so a missing one still answers 404."""
    if not current_user.holds(*roles):
        abort(refused)


def role_required(*roles, refused: int = 404):
    """Decorator: sign-in required, then one of the roles (see require_role)."""
    def decorate(view):
        @wraps(view)
        @login_required
        def guarded(*args, **kwargs):
            require_role(*roles, refused=refused)
            return view(*args, **kwargs)
        return guarded
    return decorate


def visible_or_404(model, object_id: int):
    """The `model` row with this id if the signed-in user may see it (the model's get_visible
    decides), else 404: a missing row, another user's and an id out of range look the same."""
    if not 0 < object_id <= LARGEST_ID:
        abort(404)
    found = model.get_visible(object_id, current_user._get_current_object())
    if found is None:
        abort(404)
    return found


def id_arg(text: str | None) -> int | None:
    """An id typed into a query string or form field, or None when it is not one."""
    text = text or ""
    return int(text) if text.isdigit() and 0 < int(text) <= LARGEST_ID else None
