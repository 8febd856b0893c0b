"""What the server-side session check costs per request (issue 12 §2).

    .venv/bin/python bench/sessions.py [--requests 2000] [--rounds 5] [--database-url URL]

Builds a throwaway instance, signs a clinician in and requests the same light page (My Account →
Language) in-process, alternating rounds with the session check (the user and the session row in one
query) and without it (the user by id and stamp alone, as before the check existed). Prints requests per
second of each and the ratio, from the same run. Only reports; exit 0 either way.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smilepass import create_app, db, web  # noqa: E402
from smilepass.auth.users import create_user  # noqa: E402
from smilepass.models import User  # noqa: E402

PASSWORD = "bench-pass-2026"
EMAIL = "bench@clinic.test"
PAGE = "/account/language"


def without_session_check(session_id: str):
    """The loader before server-side sessions: the user by id and stamp, nothing about the session."""
    user_id, _, stamp = session_id.partition(":")
    return User.get_or_none((User.id == int(user_id)) & (User.session_stamp == stamp) & User.is_active)


def timed(client, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        response = client.get(PAGE)
        if response.status_code != 200:
            raise SystemExit(f"{PAGE} answered {response.status_code}: not signed in?")
    return requests / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating (median taken)")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smilepass-bench-sessions-") as tmp:
        app = create_app({"INSTANCE_PATH": tmp, "SECRET_KEY": "bench", "UPLOAD_DIR": os.path.join(tmp, "uploads"),
                          "DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.db", "WTF_CSRF_ENABLED": False})
        db.migrate()
        with db.database.connection_context():
            if User.by_email(EMAIL) is None:
                create_user(EMAIL, PASSWORD, "clinician", "Bench")
        client = app.test_client()
        response = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 303, response.status_code
        checked_loader = web.login_manager._user_callback
        rates = {"with check": [], "without": []}
        timed(client, 200)  # warm-up: templates compiled, prepared SQL built
        for _ in range(args.rounds):
            web.login_manager.user_loader(checked_loader)
            rates["with check"].append(timed(client, args.requests))
            web.login_manager.user_loader(without_session_check)
            rates["without"].append(timed(client, args.requests))
        web.login_manager.user_loader(checked_loader)
    with_check, without = statistics.median(rates["with check"]), statistics.median(rates["without"])
    print(f"{PAGE}, {args.rounds} × {args.requests} requests each, in-process, "
          f"{'PostgreSQL' if args.database_url.startswith('postgres') else 'SQLite'}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"  without the session check  {without:8.0f} req/s")
    print(f"  with the session check     {with_check:8.0f} req/s")
    print(f"  ratio (with / without)     {with_check / without:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
