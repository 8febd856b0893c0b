"""Search benchmark: server time of 200 mixed searches against the plain sorted ticket table partial.

    .venv/bin/python bench/search.py [--tickets 200000] [--replies 1000000] [--queries 200]
                                     [--database-url URL] [--redis-url URL]

Builds a throwaway instance (SQLite in a temporary folder, or the given, empty, PostgreSQL database),
fills it with `flask demo --tickets N --replies M` (timed; the issue's goal of under two minutes is for
`--tickets 200000` with its default replies), signs in as a demo clinician and
as support, and requests in the app's own process (Flask's test client: server time, no network) the
Support table partial with ?q= and /search?q= for a fixed mix of single words, prefixes, phrases,
ticket numbers and words found nowhere; then the same partial without a search. Prints p50 / p95 per
kind and user, against the goal (p95 under 50 ms). It only reports: exit 0 whether or not goals are met.
"""
import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The bench signs support in with a password only: a fresh instance would otherwise send support staff to
# two-factor enrolment (a 303) instead of the page to time. Read when smilepass is imported: set it first.
os.environ["SMILEPASS_2FA_DEFAULT_POLICY"] = "none"

from smilepass import create_app, db  # noqa: E402

PASSWORD = "bench-pass-2026"
USERS = {"clinician": "clinician1@demo.smilepass.local", "support": "support@demo.smilepass.local"}
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
GOAL_MS = 50
WORDS = ["scan", "tray", "invoice", "attachment", "upper", "rejected", "cracked", "plan", "viewer", "login"]
PREFIXES = ["sca", "tra", "inv", "att", "upp", "rej", "cra", "vie"]
PHRASES = ['"upper arch"', '"scan rejected"', '"wrong plan"', '"tray cracked"']
MISSES = ["zzyzx", "qwertyuiop", "nothingmatcheshere", '"cracked invoice viewer"']


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tickets", type=int, default=200_000)
    p.add_argument("--replies", type=int, default=None,
                   help="replies and internal notes in the demo threads (default: 5 a ticket, the issue's "
                   "200,000 tickets with 1,000,000 replies)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--database-url", default="")
    p.add_argument("--instance", default="", help="reuse this instance folder as filled by an earlier run "
                   "(with its --database-url, if any): no migrate, no demo")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    return p.parse_args()


def mixed_queries(count: int, tickets: int) -> list[tuple[str, str]]:
    rng = random.Random(42)
    kinds = [("word", lambda: rng.choice(WORDS)), ("prefix", lambda: rng.choice(PREFIXES)),
             ("phrase", lambda: rng.choice(PHRASES)), ("number", lambda: f"SP-{rng.randint(1, tickets):06d}"),
             ("no hit", lambda: rng.choice(MISSES))]
    return [(kind, make()) for kind, make in (kinds[n % len(kinds)] for n in range(count))]


def sign_in(app, email):
    client = app.test_client()
    token = CSRF_META.search(client.get("/auth/login").get_data(as_text=True)).group(1)
    response = client.post("/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.status_code
    return client


def timed(client, url, headers=None, query=None) -> tuple[float, float]:
    """Wall and CPU milliseconds of one request served in this process (the test client's share is
    small; the CPU figure is the one to trust on a loaded machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    response = client.get(url, query_string=query, headers=headers or {})
    elapsed = ((time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000)
    assert response.status_code == 200, (url, query, response.status_code)
    return elapsed


def p(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main():
    args = parse_args()
    folder = Path(args.instance or tempfile.mkdtemp(prefix="smilepass-bench-search-"))
    url = args.database_url or f"sqlite:///{folder / 'smilepass.db'}"
    if not args.instance:
        fill(folder, url, args)
    os.environ.update(SMILEPASS_INSTANCE=str(folder))
    app = create_app({"DATABASE_URL": url, "REDIS_URL": args.redis_url, "INSTANCE_PATH": str(folder),
                      "RATELIMIT_ENABLED": False})
    queries = mixed_queries(args.queries, args.tickets)
    htmx = {"HX-Request": "true"}
    print(f"load average before: {load()}")
    print(f"{'user':10} {'what':28} {'p50 wall':>9} {'p95 wall':>9} {'p50 cpu':>8} {'p95 cpu':>8} {'p95/plain':>9}"
          f"  goal p95 < {GOAL_MS} ms")
    for role, email in USERS.items():
        client = sign_in(app, email)
        for _ in range(5):  # warm up: statements prepared, templates compiled
            timed(client, "/support/?sort=-date", htmx)
        plain = [timed(client, "/support/?sort=-date", htmx) for _ in range(40)]
        plain_cpu95 = p([c for _, c in plain], .95)
        line(role, "table partial, no q", plain, plain_cpu95)
        for target, path in (("table partial ?q=", "/support/"), ("/search?q=", "/search")):
            times: dict[str, list[tuple[float, float]]] = {}
            for kind, typed in queries:
                times.setdefault(kind, []).append(
                    timed(client, path, htmx if path != "/search" else None, {"q": typed}))
            every = [t for values in times.values() for t in values]
            for kind, values in times.items():
                line(role, f"{target} {kind}", values, plain_cpu95)
            verdict = "ok" if p([w for w, _ in every], .95) < GOAL_MS else "MISSED"
            cpu_verdict = "ok" if p([c for _, c in every], .95) < GOAL_MS else "MISSED"
            line(role, f"{target} all", every, plain_cpu95, f"  wall {verdict}, cpu {cpu_verdict}")
    print(f"load average after: {load()}")
    db.database.close()
    return 0


def fill(folder: Path, url: str, args) -> None:
    env = {**os.environ, "SMILEPASS_INSTANCE": str(folder), "DATABASE_URL": url, "REDIS_URL": args.redis_url,
           "FLASK_APP": str(ROOT / "app.py")}
    flask = str(ROOT / ".venv" / "bin" / "flask")
    subprocess.run([flask, "migrate"], env=env, check=True, capture_output=True)
    replies = args.tickets * 5 if args.replies is None else args.replies
    start = time.perf_counter()
    subprocess.run([flask, "demo", "--tickets", str(args.tickets), "--replies", str(replies), "--password", PASSWORD],
                   env=env, check=True, capture_output=True)
    demo_s = time.perf_counter() - start
    print(f"instance {folder}")
    print(f"flask demo --tickets {args.tickets} --replies {replies}: {demo_s:.1f} s, load average {load()}")


def line(role, what, values, plain_cpu95, note=""):
    walls, cpus = [w for w, _ in values], [c for _, c in values]
    print(f"{role:10} {what:28} {statistics.median(walls):9.1f} {p(walls, .95):9.1f} {statistics.median(cpus):8.1f}"
          f" {p(cpus, .95):8.1f} {p(cpus, .95) / plain_cpu95:8.2f}x{note}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
