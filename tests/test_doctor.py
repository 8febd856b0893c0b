"""`flask --app app doctor` and Administration → System (issue #14): all OK on an instance with real RQ
workers on each queue, a real `rq cron`, a real SMTP server, a fresh backup and an https base URL; FAIL
with exit status 1 when Redis is unreachable, when a queue has no live worker, when cron stops, when a
migration is pending; WARN for mail without SMTP, http links and an old backup."""
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from playhouse.migrations import Runner
from redis import Redis

from smilepass import db
from smilepass.doctor import Status, run_checks
from smilepass.doctor.outside import check_base_url, check_mail, check_scan_repair
from smilepass.doctor.queueing import check_redis, check_workers
from smilepass.doctor.runner import Probe
from smilepass.doctor.storage import DISK_FAIL_BYTES, DISK_WARN_BYTES, check_backup, check_disk, disk_status
from smilepass.queue import QUEUES

from .conftest import ROOT, free_port, stop_worker, worker_env
from .test_scans import start_redis

BASE_URL = "https://portal.clinic.example"
# Every line the doctor prints, in order.
NAMES = ["Database", "Redis", "Worker: default", "Worker: scans", "Cron", "Mail", "Links in mails", "File storage",
         "Disk space", "Last backup", "Scan repair"]
# Waiting for a started process to show up in Redis (a bounded wait for readiness, not a timing assertion).
READY_WITHIN = 90


def lines(output: str) -> dict[str, tuple[str, str]]:
    """The doctor's output as {name: (status, detail)}: `STATUS  name  detail` per line."""
    found = {}
    for line in output.splitlines():
        for name in NAMES:
            status, _, rest = line.partition("  ")
            if status.strip() in ("OK", "WARN", "FAIL") and rest.strip().startswith(name + "  "):
                found[name] = (status.strip(), rest.strip()[len(name):].strip())
    return found


def expected_disk(path) -> str:
    """The disk line's status on this machine (a test machine with little free space warns, rightly)."""
    return disk_status(shutil.disk_usage(path).free).value


def doctor_cli(app):
    return app.test_cli_runner().invoke(args=["doctor"])


def by_name(checks) -> dict:
    return {check.name: check for check in checks}


def probe(app) -> Probe:
    return Probe(app.config, app.instance_path)


def wait_for(condition, what: str, processes=()):
    deadline = time.monotonic() + READY_WITHIN
    while not condition():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"{what}: a process exited early: {process.stdout.read() if process.stdout else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {READY_WITHIN} s")
        time.sleep(0.2)


def start(command, app, log_path):
    log = open(log_path, "w")
    return subprocess.Popen(command, cwd=ROOT, env=worker_env(app), stdout=log, stderr=subprocess.STDOUT), log


def stop(process) -> None:
    if process.poll() is None:
        stop_worker(process)  # SIGTERM: rq unregisters the worker (or the cron scheduler) as it exits


@pytest.fixture
def running_parts(app, redis_conn, tmp_path):
    """A real worker per queue (`python -m workers.worker QUEUE`) and the real `rq cron workers.cron`, as
    `make run` starts them, against this test's database and Redis; stopped afterwards."""
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    started = {}
    logs = []
    for queue in QUEUES:
        process, log = start([sys.executable, "-m", "workers.worker", queue], app, tmp_path / f"worker-{queue}.log")
        started[queue] = process
        logs.append(log)
    process, log = start([rq, "cron", "--url", app.config["REDIS_URL"], "workers.cron"], app, tmp_path / "cron.log")
    started["cron"] = process
    logs.append(log)
    processes = list(started.values())
    wait_for(lambda: all(redis_conn.scard(f"rq:workers:{queue}") for queue in QUEUES), "workers registering",
             processes)
    wait_for(lambda: redis_conn.zcard("rq:cron_schedulers"), "rq cron registering", processes)
    yield started
    for process in processes:
        stop(process)
    for log in logs:
        log.close()


def test_all_ok_then_each_part_that_stops_fails(app, running_parts, smtp_sink, admin, tmp_path):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_sink.port, BASE_URL=BASE_URL)
    made = app.test_cli_runner().invoke(args=["backup"])
    assert made.exit_code == 0, made.output

    # The real command, as the installer and `make upgrade` run it.
    env = {**worker_env(app), "SMILEPASS_BASE_URL": BASE_URL}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "doctor"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    found = lines(done.stdout)
    assert list(found) == NAMES, done.stdout + done.stderr
    assert {name: status for name, (status, _) in found.items()} == {
        **{name: "OK" for name in NAMES}, "Disk space": expected_disk(tmp_path)}, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "maxmemory-policy noeviction" in found["Redis"][1]
    assert found["Worker: default"][1].startswith("1 alive") and found["Worker: scans"][1].startswith("1 alive")
    assert "rq cron alive (workers.cron, 6 periodic jobs)" in found["Cron"][1]
    assert f"127.0.0.1:{smtp_sink.port} answers (EHLO, NOOP)" in found["Mail"][1]
    assert found["Links in mails"][1] == f"start with {BASE_URL}"
    assert re.fullmatch(r"smilepass-\d{8}T\d{6}Z\.tar\.gz, taken \d+ min ago", found["Last backup"][1])
    assert re.fullmatch(r"a small test scan was repaired with previews in \d+\.\d\d s \(numpy \d+\.\d+\.\d+\)",
                        found["Scan repair"][1]), found["Scan repair"]
    assert smtp_sink.messages == []  # a test connection, no mail

    # A warning alone (mail waiting in the outbox) does not fail the command.
    app.config["SMTP_HOST"] = ""
    warned = doctor_cli(app)
    assert lines(warned.output)["Mail"][0] == "WARN" and "FAIL" not in warned.output
    assert warned.exit_code == 0, warned.output
    app.config["SMTP_HOST"] = "127.0.0.1"

    # The same on Administration → System, without JavaScript (a plain page).
    page = admin.get("/admin/system")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'href="/admin/system" aria-current="page"' in html
    for name in NAMES:
        assert f"<strong>{name}</strong>" in html
    assert html.count('class="status check-ok"') == len(NAMES) - (expected_disk(tmp_path) != "OK")
    assert "check-fail" not in html

    # Heartbeats that stopped coming count as dead even while the keys are still there: 15 minutes on,
    # the same processes' last heartbeats are too old.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15), tick=False):
        stale = by_name(run_checks(app))
    assert [stale[name].status for name in ("Worker: default", "Worker: scans", "Cron")] == [Status.FAIL] * 3

    # A queue whose worker stops fails on its own line; the other queue stays OK.
    stop(running_parts["scans"])
    result = doctor_cli(app)
    found = lines(result.output)
    assert result.exit_code == 1
    assert found["Worker: scans"][0] == "FAIL" and "no worker alive: scan repairs wait" in found["Worker: scans"][1]
    assert found["Worker: default"][0] == "OK" and found["Cron"][0] == "OK"

    stop(running_parts["cron"])
    found = lines(doctor_cli(app).output)
    assert found["Cron"][0] == "FAIL" and "no rq cron has sent a heartbeat" in found["Cron"][1]

    html = admin.get("/admin/system").get_data(as_text=True)
    assert html.count('class="status check-fail"') == 2 and "Something this server needs is not working" in html


def test_wait_runs_the_checks_again_until_the_workers_report(app, redis_conn, tmp_path):
    """`make upgrade` restarts the units, then runs `doctor --wait`: workers that take a moment to start are not
    a failure, workers that never come are."""
    env = worker_env(app)
    doctor = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "doctor", "--wait", "240"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The workers start only after the doctor's first round has found none (it says so on stderr).
    first = doctor.stderr.readline()
    assert first.startswith("waiting: Worker: default, Worker: scans, Cron failed"), first + doctor.stderr.read()
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    started = [start([sys.executable, "-m", "workers.worker", *QUEUES], app, tmp_path / "worker.log"),
               start([rq, "cron", "--url", app.config["REDIS_URL"], "workers.cron"], app, tmp_path / "cron.log")]
    try:
        output, errors = doctor.communicate(timeout=300)
    finally:
        for process, log in started:
            stop(process)
            log.close()
    found = lines(output)
    assert doctor.returncode == 0, output + errors
    assert [found[name][0] for name in ("Worker: default", "Worker: scans", "Cron")] == ["OK"] * 3

    # Nothing comes: after the wait, the failure stands.
    gone = app.test_cli_runner().invoke(args=["doctor", "--wait", "3"])
    assert gone.exit_code == 1 and lines(gone.output)["Cron"][0] == "FAIL"


def test_redis_unreachable_fails_with_exit_1(app):
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = doctor_cli(app)
    found = lines(result.output)
    assert result.exit_code == 1
    assert found["Redis"][0] == "FAIL" and "not reachable at 127.0.0.1:" in found["Redis"][1]
    for name in ("Worker: default", "Worker: scans", "Cron"):
        assert found[name] == ("FAIL", "cannot be checked: Redis is not reachable")
    assert found["Database"][0] == "OK"


def test_redis_that_evicts_keys_warns(app, tmp_path):
    port = free_port()
    server = start_redis(port, tmp_path)  # a private one: the policy of the shared test Redis stays as it is
    try:
        Redis(port=port).config_set("maxmemory-policy", "allkeys-lru")
        app.config["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        looked = probe(app)
        check = check_redis(looked)
        workers = check_workers(looked)
    finally:
        server.terminate()
        server.wait()
    assert check.status is Status.WARN and "evicts keys (maxmemory-policy allkeys-lru)" in check.detail
    # Reachable all the same: the worker lines say there is no worker, not that Redis is down.
    assert [w.detail.startswith("no worker alive") for w in workers] == [True, True]


def test_no_worker_fails_with_exit_1(app, redis_conn):
    result = doctor_cli(app)
    found = lines(result.output)
    assert result.exit_code == 1
    assert found["Redis"][0] == "OK"
    assert found["Worker: default"][0] == "FAIL" and "mail, sweeps and service-level checks wait" in \
        found["Worker: default"][1]
    assert found["Worker: scans"][0] == "FAIL"


def test_pending_migrations_fail_with_exit_1(app):
    runner = Runner(db.database.obj, str(db.MIGRATIONS_DIR))
    last = sorted(path.stem for path in db.MIGRATIONS_DIR.glob("[0-9]*.py"))[-1]
    with db.database.connection_context():
        applied = runner.History.get(runner.History.name == last).applied
        runner.History.delete().where(runner.History.name == last).execute()
    try:
        result = doctor_cli(app)
    finally:
        # The PostgreSQL pass shares one migrated database between tests: put the row back.
        with db.database.connection_context():
            runner.History.create(name=last, applied=applied)
    found = lines(result.output)
    assert result.exit_code == 1
    assert found["Database"] == ("FAIL", f"1 migration not applied ({last}): run flask --app app migrate")
    assert lines(doctor_cli(app).output)["Database"][0] == "OK"


def test_mail_unset_warns_configured_fails_or_answers(app, smtp_sink):
    app.config["SMTP_HOST"] = ""
    unset = check_mail(probe(app))
    assert unset.status is Status.WARN and "mail waits in the outbox" in unset.detail

    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nothing answers there
    failing = check_mail(probe(app))
    assert failing.status is Status.FAIL and "ConnectionRefusedError" in failing.detail

    app.config["SMTP_PORT"] = smtp_sink.port
    assert check_mail(probe(app)).status is Status.OK


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def accept_clinic_login(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login, auth_data.password) == (b"portal@clinic.example", b"s3cret-mail")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


def test_mail_logs_in_when_a_user_is_set(app):
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port(), authenticator=accept_clinic_login,
                            auth_require_tls=False)  # a test server without a certificate
    controller.start()
    try:
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, SMTP_USER="portal@clinic.example",
                          SMTP_PASSWORD="s3cret-mail")
        good = check_mail(probe(app))
        app.config["SMTP_PASSWORD"] = "wrong"
        bad = check_mail(probe(app))
    finally:
        controller.stop()
    assert good.status is Status.OK and good.detail.endswith("answers (EHLO, login, NOOP)")
    assert bad.status is Status.FAIL and "SMTPAuthenticationError" in bad.detail and "wrong" not in bad.detail


def test_links_in_mails_warn_unless_https_to_a_real_host(app):
    for url, status in (("http://127.0.0.1:5000", Status.WARN), ("http://portal.clinic.example", Status.WARN),
                        ("https://localhost:8443", Status.WARN), ("https://127.0.0.1", Status.WARN),
                        (BASE_URL, Status.OK)):
        app.config["BASE_URL"] = url
        assert check_base_url(probe(app)).status is status, url


def test_backup_age_warns_after_a_day_and_a_half(app):
    first = check_backup(probe(app))
    assert first.status is Status.WARN and "no backup in" in first.detail
    taken = dt.datetime(2026, 11, 30, 1, 30, tzinfo=dt.UTC)
    with time_machine.travel(taken, tick=False):
        assert app.test_cli_runner().invoke(args=["backup"]).exit_code == 0
    with time_machine.travel(taken + dt.timedelta(hours=35), tick=False):
        fresh = check_backup(probe(app))
    assert (fresh.status, fresh.detail) == (Status.OK, "smilepass-20261130T013000Z.tar.gz, taken 35 h ago")
    with time_machine.travel(taken + dt.timedelta(hours=37), tick=False):
        old = check_backup(probe(app))
    assert old.status is Status.WARN and "taken 37 h ago (older than 36 h" in old.detail
    with time_machine.travel(taken + dt.timedelta(days=5), tick=False):
        assert "taken 5 days ago" in check_backup(probe(app)).detail


def test_disk_space_thresholds(app):
    assert disk_status(DISK_FAIL_BYTES - 1) is Status.FAIL
    assert disk_status(DISK_WARN_BYTES - 1) is Status.WARN
    assert disk_status(DISK_WARN_BYTES) is Status.OK
    check = check_disk(probe(app))
    assert check.status is disk_status(shutil.disk_usage(app.instance_path).free)
    # The instance, uploads and backup folder of a test share one disk: one entry names all three.
    assert check.detail.startswith("instance, uploads, backups: ") and " free of " in check.detail


def test_a_scan_pipeline_that_cannot_run_fails(app, tmp_path, monkeypatch):
    """The check repairs a small scan in a fresh interpreter: a numpy that cannot load (a broken wheel, a
    missing system library) fails it with the reason, and the web process itself is not touched."""
    assert check_scan_repair(probe(app)).status is Status.OK
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "numpy.py").write_text("raise ImportError('libopenblas.so.0: cannot open shared object file')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken))
    check = check_scan_repair(probe(app))
    assert check.status is Status.FAIL and "libopenblas.so.0" in check.detail
    assert check.detail.startswith("a small test scan could not be repaired")


def test_only_admins_see_the_system_page(app, clinician, support, admin):
    for browser in (clinician, support):
        assert browser.get("/admin/system").status_code == 404
        assert 'href="/admin/system"' not in browser.get("/support/").get_data(as_text=True)
    anonymous = app.test_client().get("/admin/system")
    assert anonymous.status_code in (302, 303) and "/auth/login" in anonymous.headers["Location"]
    assert 'href="/admin/system"' in admin.get("/support/").get_data(as_text=True)


def test_the_system_page_speaks_german(app, admin):
    admin.get("/account/language")
    admin.post("/account/language", {"language": "de"})
    app.config["SMTP_HOST"] = ""
    html = admin.get("/admin/system").get_data(as_text=True)
    assert "<h1>System</h1>" in html and "Datenbank" in html and "im Postausgang" in html
