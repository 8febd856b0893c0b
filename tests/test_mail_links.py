"""Where mail goes and where its links lead: `make run PORT=5077` (scripts/run.sh) makes mail links
point at port 5077 unless SMILEPASS_BASE_URL says otherwise, says at start-up where mail goes, and
admins see the same on the first page after signing in."""
import http.cookiejar
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from smilepass.models import OutboxMail

from .conftest import CSRF_META, ROOT, free_port, query


def base_url_seen_by_a_fresh_process(tmp_path, **env) -> str:
    """BASE_URL as the web server and the worker compute it: a new process with this environment."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PORT", "SMILEPASS_BASE_URL")}
    environment.update(env, SMILEPASS_INSTANCE=str(tmp_path / "instance"),
                       DATABASE_URL=f"sqlite:///{tmp_path / 'config.db'}")
    script = "from smilepass import create_app; print(create_app().config['BASE_URL'])"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip().splitlines()[-1]


def test_mail_links_follow_the_port_unless_a_base_url_is_set(tmp_path):
    assert base_url_seen_by_a_fresh_process(tmp_path) == "http://127.0.0.1:5000"
    assert base_url_seen_by_a_fresh_process(tmp_path, PORT="5077") == "http://127.0.0.1:5077"
    assert base_url_seen_by_a_fresh_process(tmp_path, PORT="5077",
                                            SMILEPASS_BASE_URL="https://portal.clinic.example") \
        == "https://portal.clinic.example"


def read_until(process, marker: str, limit_seconds: float = 300) -> str:
    """stderr of `process` up to the chunk holding `marker` (or all of it, if the process ends first).
    Read from the descriptor itself: a buffered readline() can pull several lines in at once and leave
    the marker in Python's buffer, where select() never sees it (the whole announcement is one write)."""
    seen = ""
    descriptor = process.stderr.fileno()
    selector = selectors.DefaultSelector()
    selector.register(descriptor, selectors.EVENT_READ)
    give_up = time.monotonic() + limit_seconds
    while marker not in seen and time.monotonic() < give_up:
        if selector.select(timeout=1):
            chunk = os.read(descriptor, 65536)
            if not chunk:  # the process closed stderr: it has ended
                break
            seen += chunk.decode(errors="replace")
        elif process.poll() is not None:
            break
    return seen


def children_of(pid: int) -> list[int]:
    listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in listed.split()]


def stop(process) -> None:
    """Ctrl-C, as a person stops `make run`; should the script not finish its clean-up in time (a slow
    machine), its children (each in a session of its own) are stopped here, so none is left to take
    the next test's jobs from Redis."""
    children = children_of(process.pid)
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in children:
        try:
            os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_make_run_points_mail_links_at_its_port_and_says_where_mail_goes(app, make_user, tmp_path):
    make_user("dr.ada@clinic.test")
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("SMILEPASS_BASE_URL", "SMTP_HOST", "PORT")}
    environment.update(PORT=str(port), WEB_WORKERS="1", REDIS_URL=app.config["REDIS_URL"],
                       DATABASE_URL=app.config["DATABASE_URL"], SMILEPASS_INSTANCE=app.instance_path,
                       SECRET_KEY=app.config["SECRET_KEY"], SMILEPASS_UPLOAD_DIR=app.config["UPLOAD_DIR"])
    process = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=environment, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        announced = read_until(process, "Press Ctrl-C")
        assert f"SmilePass is running at http://127.0.0.1:{port}/" in announced, announced
        assert "Mail is kept in the outbox (no SMTP_HOST)" in announced
        assert f"Links in mails start with http://127.0.0.1:{port}." in announced

        # A reset link written by the running web server points at the port it runs on.
        site = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(site + "/auth/forgot").read().decode()
        token = CSRF_META.search(page).group(1)
        form = urllib.parse.urlencode({"csrf_token": token, "email": "dr.ada@clinic.test"}).encode()
        opener.open(site + "/auth/forgot", data=form).read()
    finally:
        stop(process)
    mail = query(lambda: OutboxMail.get(OutboxMail.to_addr == "dr.ada@clinic.test"))
    assert re.search(rf"http://127\.0\.0\.1:{port}/auth/reset/\S+", mail.body), mail.body


def test_admins_see_where_mail_goes_on_their_first_page(app, admin, clinician):
    page = admin.get("/support/").get_data(as_text=True)
    assert "No SMTP server is set (SMTP_HOST), so mail is kept in the outbox" in page
    assert 'href="/admin/outbox"' in page
    assert f"Links in mails start with {app.config['BASE_URL']}." in page
    app.config["SMTP_HOST"] = "mail.clinic.example"
    page = admin.get("/support/").get_data(as_text=True)
    assert "Mail is sent through the SMTP server mail.clinic.example:25." in page
    # Clinicians are not told how the server is set up.
    assert "SMTP" not in clinician.get("/support/").get_data(as_text=True)
