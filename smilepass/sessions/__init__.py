"""Signed-in sessions kept on the server (issue 12 §2).

The signed cookie carries a random session key; the database keeps its hash in a UserSession row. Every
request that reads the signed-in user looks the row up together with the user (one query), so deleting
the row ends the session at once: sign-out, the idle limit, a password change, deactivation and an
admin's "sign out everywhere" all do, and a copied cookie is refused afterwards.

Things shown once after a redirect (a new patient link and the token its QR code is drawn from) are kept
in Redis under the session's row for a few minutes instead of in the cookie, which anyone holding it can
read (base64 is not encryption)."""
import datetime as dt
import hashlib
import json
import logging
import re
import secrets

from flask import current_app, g, request, session
from redis.exceptions import RedisError

from ..db import database, prepared
from ..models import User, UserSession, utcnow
from ..queue import redis_connection

log = logging.getLogger(__name__)

SESSION_KEY = "sid"  # the cookie's entry holding the random session key
SEEN_RESOLUTION = dt.timedelta(seconds=60)  # last-seen is written at most this often per session
# Requests an open page makes by itself (a live ticket page's event stream and its polls and parts,
# docs/live.md): they are not the user's activity, so an idle session still ends while the page is open.
PASSIVE_ENDPOINTS = frozenset({"live.ticket_events", "support.live_parts"})


def passive_request() -> bool:
    return request.endpoint in PASSIVE_ENDPOINTS
STASH_SECONDS = 10 * 60


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _idle_limit() -> dt.timedelta:
    return dt.timedelta(seconds=current_app.config["SESSION_IDLE_SECONDS"])


def start(user: User) -> UserSession:
    """A new server-side session for a user who just signed in; call after login_user()."""
    key = secrets.token_urlsafe(32)
    now = utcnow()
    with database.atomic():
        # Sessions that idled out are no use to anyone; their owner's next sign-in tidies them.
        idled_out = (UserSession.user == user) & (UserSession.last_seen_at < now - _idle_limit())
        UserSession.delete().where(idled_out).execute()
        row = UserSession.create(user=user, key_hash=_hash(key), created_at=now, last_seen_at=now,
                                 user_agent=(request.user_agent.string or "")[:255],
                                 address=(request.remote_addr or "")[:64])
    session[SESSION_KEY] = key
    g.user_session_id = row.id
    return row


# The user's columns in the order the session query selects them (all of them, as User.select() would).
_USER_FIELDS = User._meta.sorted_fields


def _session_user_query(p):
    return (User.select(*_USER_FIELDS, UserSession.id, UserSession.last_seen_at, UserSession.second_factor)
            .join(UserSession, on=(UserSession.user == User.id))
            .where((User.id == p.user_id) & (User.session_stamp == p.stamp) & User.is_active
                   & (UserSession.key_hash == p.key_hash)))


def _user_of(values) -> User:
    """The User of a session query's row, its fields converted as a query of User would. Built here from
    the plain row: peewee's model rows resolve the query's columns anew for each query, which cost five
    times the statement itself on every signed-in request."""
    user = User(__no_default__=1, **{field.name: field.python_value(value)
                                     for field, value in zip(_USER_FIELDS, values, strict=False)})
    user._dirty.clear()
    return user


def load_user(user_id: int, stamp: str) -> User | None:
    """The signed-in user if this cookie's session is still open on the server, else None (and the
    session is forgotten). Notes the session's row id in g for this request."""
    key = session.get(SESSION_KEY)
    if not isinstance(key, str) or not key:
        return None
    rows = prepared("session-user", _session_user_query, raw_rows=True,
                    user_id=user_id, stamp=stamp, key_hash=_hash(key))
    if not rows:
        return None
    row = rows[0]
    user = _user_of(row)
    session_id, seen, second_factor = row[len(_USER_FIELDS):]
    if isinstance(seen, str):  # SQLite hands back text through a raw query of joined columns
        seen = dt.datetime.fromisoformat(seen)
    now = utcnow()
    if now - seen > _idle_limit():
        UserSession.delete().where(UserSession.id == session_id).execute()
        session["expired"] = True
        return None
    if now - seen >= SEEN_RESOLUTION and not passive_request():
        UserSession.update(last_seen_at=now).where(UserSession.id == session_id).execute()
    g.user_session_id = session_id
    g.second_factor = second_factor  # "" while the second step of sign-in is pending (see twofa)
    return user


def current_id() -> int | None:
    """This request's session row id, once the signed-in user has been loaded."""
    return g.get("user_session_id")


def end_current() -> None:
    key = session.get(SESSION_KEY)
    if isinstance(key, str) and key:
        UserSession.delete().where(UserSession.key_hash == _hash(key)).execute()


def end(user: User, session_id: int) -> bool:
    """End one of this user's sessions; False when it is not theirs (or already ended)."""
    return bool(UserSession.delete().where((UserSession.id == session_id) & (UserSession.user == user)).execute())


def end_all(user: User, keep_id: int | None = None) -> int:
    """End every session of a user (but the one kept, e.g. where the password was just changed)."""
    query = UserSession.delete().where(UserSession.user == user)
    if keep_id is not None:
        query = query.where(UserSession.id != keep_id)
    return query.execute()


def open_sessions(user: User) -> list[UserSession]:
    """The user's sessions that have not idled out, most recently seen first."""
    since = utcnow() - _idle_limit()
    return list(UserSession.select().where((UserSession.user == user) & (UserSession.last_seen_at >= since))
                .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc()))


# What a User-Agent says, for people: "Firefox on Windows". Order matters (Edge says Chrome too,
# Chrome says Safari too).
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iOS"), ("iPad", "iPadOS"), ("Android", "Android"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_browser(user_agent: str) -> str:
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    if browser and system:
        return f"{browser} · {system}"
    if browser or system:
        return browser or system
    # Something else (a script, a test client): its first word, bounded.
    first = re.split(r"[\s/;(]", user_agent.strip(), maxsplit=1)[0]
    return first[:40]


# Shown once after a redirect ---------------------------------------------------------------------

def _stash_key(name: str) -> str | None:
    row_id = current_id()
    return f"smilepass:session:{row_id}:{name}" if row_id else None


def stash(name: str, value) -> bool:
    """Keep a value for this session for a few minutes; False when it could not be kept."""
    key = _stash_key(name)
    if key is None:
        return False
    try:
        redis_connection().set(key, json.dumps(value), ex=STASH_SECONDS)
    except (RedisError, OSError) as exc:
        log.warning("session stash: Redis unavailable: %s", exc)
        return False
    return True


def take(name: str):
    """The stashed value, removed as it is read; None when there is none (or Redis is down)."""
    key = _stash_key(name)
    if key is None:
        return None
    try:
        raw = redis_connection().getdel(key)
    except (RedisError, OSError) as exc:
        log.warning("session stash: Redis unavailable: %s", exc)
        return None
    return json.loads(raw) if raw else None


def peek(name: str):
    key = _stash_key(name)
    if key is None:
        return None
    try:
        raw = redis_connection().get(key)
    except (RedisError, OSError) as exc:
        log.warning("session stash: Redis unavailable: %s", exc)
        return None
    return json.loads(raw) if raw else None
