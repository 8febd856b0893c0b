"""Creating accounts, shared by the admin screen, the CLI and the demo data."""
from flask_babel import gettext

from ..models import Role, User, normalize_email
from .security import hash_password, new_session_stamp, password_problem


class UserExists(Exception):
    pass


class BadPassword(Exception):
    pass


def create_user(email: str, password: str, role: str, name: str = "", password_hash: str | None = None,
                temporary: bool = False) -> User:
    """`temporary`: someone else chose the password (an admin), so the new user must replace it at their
    first sign-in."""
    email = normalize_email(email)
    if role not in {r.value for r in Role}:
        raise ValueError(f"unknown role {role!r}")
    if User.by_email(email):
        raise UserExists(gettext("%(email)s already has an account.", email=email))
    if password_hash is None:
        problem = password_problem(password, email)
        if problem:
            raise BadPassword(problem)
        password_hash = hash_password(password)
    return User.create(
        email=email, name=name.strip(), role=role, password_hash=password_hash, session_stamp=new_session_stamp(),
        password_change_required=temporary,
    )
