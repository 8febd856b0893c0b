"""`make install` and `make upgrade` (scripts/install.sh, scripts/upgrade.sh) run into a temporary root
(DESTDIR), the way they would on a Debian server but without apt, useradd, chown or systemctl: the
files, their modes, the settings file (SECRET_KEY once, every README variable, an admin's edits kept),
a runtime venv without test packages that serves the app from the installed copy, `systemd-analyze
verify` on the units, `caddy validate` on the Caddyfile, and an upgrade that stops when its backup fails.

Building the runtime venv takes a minute (pip, from its cache), so it happens once per module and xdist
worker (a worker that gets tests of this module builds its own install; xdist's `loadgroup`, which could
keep them on one worker, does not group under pytest 9.2). Each worker runs its share in file order, so
the tests that change the install (a re-run, upgrades) come last and read-only tests compare with the
snapshot taken right after the first install."""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from smilepass import config

from .conftest import PG_URL, ROOT, free_port
from .parts import part_missing

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="the installer does not use the test database: it runs in the "
                                                      "SQLite pass")

HOST = "portal.clinic.example"
# What Debian's caddy package puts in /etc/caddy/Caddyfile: the installer keeps it once.
DEBIAN_CADDYFILE = ":80 {\n\troot * /usr/share/caddy\n\tfile_server\n}\n"
UNITS = ["smilepass.target", "smilepass-migrate.service", "smilepass-web.service", "smilepass-worker@.service",
         "smilepass-cron.service", "smilepass-backup.service", "smilepass-backup.timer"]
SERVICES = [u for u in UNITS if u.endswith(".service")]


def clean_env(**extra) -> dict:
    """The test process's environment without the settings a test run sets for itself (REDIS_URL,
    DATABASE_URL, SMILEPASS_*): the installer must write its own defaults."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("SMILEPASS_", "SMTP_")) or k in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "PORT"})}
    env.update(extra)
    return env


def run_script(script: str, root: Path, timeout=900, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / script)], cwd=ROOT, env=clean_env(DESTDIR=str(root), **extra),
                          capture_output=True, text=True, timeout=timeout)


def env_values(text: str) -> dict:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))


def named_variables(text: str) -> set:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def readme_variables() -> set:
    """Every variable named in the first column of README's configuration table."""
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)", line.split("|")[1]))
    return names


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One install into a fresh root that already holds Debian's default Caddyfile."""
    root = tmp_path_factory.mktemp("destdir")
    (root / "etc/caddy").mkdir(parents=True)
    (root / "etc/caddy/Caddyfile").write_text(DEBIAN_CADDYFILE)
    result = run_script("install.sh", root, HOST=HOST)
    assert result.returncode == 0, result.stderr[-5000:]
    env_file = root / "etc/smilepass/smilepass.env"
    return SimpleNamespace(root=root, app=root / "opt/smilepass", env_file=env_file, first_env=env_file.read_text(),
                           output=result.stderr)


def smilepass_command(installed, env_file: Path, *args, timeout=300, **popen) -> subprocess.CompletedProcess:
    """The installed `smilepass` command (deploy/smilepass as /usr/local/bin/smilepass), as the caller."""
    env = clean_env(SMILEPASS_APP_DIR=str(installed.app), SMILEPASS_ENV_FILE=str(env_file), SMILEPASS_RUN_AS="")
    return subprocess.run([str(installed.root / "usr/local/bin/smilepass"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, **popen)


def instance_settings(installed, tmp_path, redis_url, **changes) -> Path:
    """A copy of the installed settings whose instance, database, Redis and backups are the test's own
    (the installed ones name /var/lib/smilepass, which a test must not touch)."""
    text = installed.env_file.read_text()
    values = {"SMILEPASS_INSTANCE": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path}/instance/sp.db",
              "REDIS_URL": redis_url, "SMILEPASS_BACKUP_DIR": str(tmp_path / "backups"), **changes}
    for key, value in values.items():
        text = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.MULTILINE)
    path = tmp_path / "smilepass.env"
    path.write_text(text)
    return path


# --- the first install -----------------------------------------------------------------------------


def test_code_is_copied_without_tests_or_build_leftovers(installed):
    app = installed.app
    for present in ["app.py", "smilepass/__init__.py", "workers/worker.py", "workers/cron.py", "migrations",
                    "templates/base.html", "static/vendor/htmx.min.js", "deploy/smilepass.env.in",
                    "smilepass/translations/de/LC_MESSAGES/messages.mo"]:
        assert (app / present).exists(), present
    for absent in ["tests", "bench", ".venv", "node_modules", "instance", "build", ".git"]:
        assert not (app / absent).exists(), absent
    assert not list(app.glob("*.egg-info"))
    assert (installed.root / "usr/local/bin/smilepass").stat().st_mode & stat.S_IXUSR


def test_data_folders_and_the_settings_file_are_private(installed):
    root = installed.root
    assert mode(root / "var/lib/smilepass") == 0o750
    assert mode(root / "var/lib/smilepass/uploads") == 0o750
    assert mode(root / "var/backups/smilepass") == 0o750
    assert mode(installed.env_file) == 0o640
    assert "skipping the system user smilepass" in installed.output
    assert "skipping Debian packages" in installed.output


def test_the_settings_name_every_readme_variable(installed):
    names = readme_variables()
    assert {"SECRET_KEY", "SMTP_PASSWORD", "SMILEPASS_TRUSTED_PROXIES", "SCAN_WORKERS"} <= names  # parsed at all
    assert names - named_variables(installed.first_env) == set()
    for name in names:  # each with a comment right above it (or above its block)
        block = next(b for b in installed.first_env.split("\n\n") if re.search(rf"^#?{name}=", b, re.MULTILINE))
        assert block.lstrip().startswith("#") and not re.match(r"^#?[A-Z_]+=", block.lstrip()), name


def test_the_settings_are_those_of_a_https_install(installed):
    values = env_values(installed.first_env)
    assert len(values["SECRET_KEY"]) >= 40
    assert values["SMILEPASS_BASE_URL"] == f"https://{HOST}"
    assert values["SMILEPASS_HTTPS"] == "1"
    assert values["SMILEPASS_TRUSTED_PROXIES"] == "1"
    assert values["SMILEPASS_INSTANCE"] == "/var/lib/smilepass"
    assert values["DATABASE_URL"] == "sqlite:////var/lib/smilepass/smilepass.db"
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert values["SMILEPASS_BACKUP_DIR"] == "/var/backups/smilepass"
    assert values["SMILEPASS_BACKUP_KEEP"] == "14"
    cores = os.cpu_count()
    assert values["WEB_WORKERS"] == str(2 * cores + 1)
    assert values["SCAN_WORKERS"] == str(max(cores - 1, 1))
    # Mail is left to the admin: shown, commented out.
    assert "SMTP_HOST" not in values and "#SMTP_HOST=" in installed.first_env


def test_the_runtime_venv_has_no_test_packages(installed):
    pip = subprocess.run([str(installed.app / "venv/bin/python"), "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True)
    packages = {p["name"].lower() for p in json.loads(pip.stdout)}
    assert {"flask", "gunicorn", "rq", "peewee", "smilepass"} <= packages
    assert packages & {"pytest", "playwright", "pytest-xdist", "time-machine", "aiosmtpd", "ruff"} == set()


def test_the_installed_copy_serves_the_app(installed, tmp_path, redis_url):
    settings = instance_settings(installed, tmp_path, redis_url)
    # The code that runs is the copy in /opt/smilepass (its templates and static files sit beside it),
    # not the package pip put into the venv.
    where = smilepass_command(installed, settings, "python", "-c", "import smilepass; print(smilepass.__file__)")
    assert where.stdout.strip() == str(installed.app / "smilepass/__init__.py"), where.stderr
    migrate = smilepass_command(installed, settings, "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    assert (tmp_path / "instance/sp.db").exists()

    port = free_port()
    env = clean_env(SMILEPASS_APP_DIR=str(installed.app), SMILEPASS_ENV_FILE=str(settings), SMILEPASS_RUN_AS="")
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen([str(installed.root / "usr/local/bin/smilepass"), "python", "-m", "gunicorn",
                               "--no-control-socket", "--workers", "1", "--bind", f"127.0.0.1:{port}", "app:app"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=10) as response:
            assert response.status == 200 and b"<form" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/vendor/htmx.min.js", timeout=10) as response:
            assert response.status == 200 and b"htmx" in response.read()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def test_the_command_line_reads_the_settings_as_systemd_does(installed, tmp_path, redis_url):
    """Quoted values come through literally (a mail password may hold $, #, spaces or quotes); comments
    and commented-out variables are not settings."""
    settings = instance_settings(installed, tmp_path, redis_url)
    with settings.open("a") as fh:
        fh.write("SMTP_PASSWORD='p#ss w$rd \"x\"'\nSMILEPASS_CLINIC_NAME=\"Praxis am See\"\n")
    script = "import os; print(repr((os.environ['SMTP_PASSWORD'], os.environ['SMILEPASS_CLINIC_NAME'], " \
             "os.environ.get('SMTP_HOST'), os.environ['PYTHONPATH'])))"
    result = smilepass_command(installed, settings, "python", "-c", script)
    assert result.stdout.strip() == repr(('p#ss w$rd "x"', "Praxis am See", None, str(installed.app))), result.stderr


def test_the_units(installed):
    units = installed.root / "etc/systemd/system"
    assert sorted(p.name for p in units.iterdir()) == sorted(UNITS)
    for name in SERVICES:
        text = (units / name).read_text()
        for line in ["User=smilepass", "EnvironmentFile=/etc/smilepass/smilepass.env", "ProtectSystem=strict",
                     "ReadWritePaths=/var/lib/smilepass /var/backups/smilepass", "NoNewPrivileges=yes",
                     "PrivateTmp=yes", "ProtectHome=yes", "After=", "redis-server.service"]:
            assert line in text, (name, line)
        assert "postgresql.service" not in text  # SQLite: no PostgreSQL to wait for
        oneshot = "Type=oneshot" in text
        assert ("Restart=on-failure" in text) != oneshot, name
    web = (units / "smilepass-web.service").read_text()
    assert "gunicorn --no-control-socket --workers ${WEB_WORKERS} --bind 127.0.0.1:8000" in web
    assert "Requires=smilepass-migrate.service" in web
    assert "workers.worker" in (units / "smilepass-worker@.service").read_text()
    assert "rq cron --url ${REDIS_URL} workers.cron" in (units / "smilepass-cron.service").read_text()
    assert "flask --app app backup --keep ${SMILEPASS_BACKUP_KEEP}" in (units / "smilepass-backup.service").read_text()
    timer = (units / "smilepass-backup.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00" in timer and "Persistent=true" in timer


@pytest.mark.parametrize("instance, queue", [("default", "default"), ("scans-1", "scans"), ("scans-12", "scans")])
def test_a_worker_instance_names_its_queue(installed, instance, queue):
    """The worker's ExecStart after systemd's unescaping ($$ -> $, %% -> %, %i -> the instance), run by
    sh with the python command replaced by echo: the queue the worker would be started on."""
    unit = (installed.root / "etc/systemd/system/smilepass-worker@.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1)
    command = re.sub(r"%(.)", lambda m: {"%": "%", "i": instance}[m.group(1)], exec_start).replace("$$", "$")
    assert command.startswith("/bin/sh -c '")
    script, args = command[len("/bin/sh -c '"):].rsplit("' ", 1)
    echoed = script.replace("exec /opt/smilepass/venv/bin/python -m workers.worker", "echo")
    result = subprocess.run(["/bin/sh", "-c", echoed, *args.split()], capture_output=True, text=True, check=True)
    assert result.stdout == f"{queue}\n"


def systemd_verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no",
                           *[f"/etc/systemd/system/{u}" for u in units]], capture_output=True, text=True, timeout=120)


def test_systemd_analyze_verify_accepts_the_units(installed):
    """`systemd-analyze verify --root=DESTDIR`: the units parse, every key is known, the units they need
    exist, and every ExecStart command is an executable inside the installed tree. verify exits 0 even
    for an unknown key or a bad value (it ignores them), so any message counts as a failure. It does not
    look up User= (systemd 252), so the user smilepass need not exist here."""
    if shutil.which("systemd-analyze") is None:
        part_missing("systemd-analyze is missing (Debian package systemd)")
    root = installed.root
    # What a Debian root has besides our files: systemd's own units (sysinit.target, ...) and the two
    # commands the units call outside the venv.
    if not (root / "usr/lib/systemd/system").exists():
        shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
        (root / "bin").mkdir(exist_ok=True)
        for command in ["/bin/sh", "/bin/kill"]:
            shutil.copy2(os.path.realpath(command), root / command.lstrip("/"))
    instances = [u for u in UNITS if "@" not in u] + ["smilepass-worker@default.service",
                                                      "smilepass-worker@scans-1.service"]
    result = systemd_verify(root, *instances)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr

    # The check is worth something: a misspelt key and a missing executable are reported.
    web = root / "etc/systemd/system/smilepass-web.service"
    original = web.read_text()
    try:
        web.write_text(original.replace("ProtectSystem=", "ProtectSystm=").replace("bin/gunicorn", "bin/gunicron"))
        broken = systemd_verify(root, "smilepass-web.service")
        assert "ProtectSystm" in broken.stderr and "gunicron is not executable" in broken.stderr
    finally:
        web.write_text(original)


def test_caddy_validates_the_caddyfile(installed, tmp_path, monkeypatch):
    caddy = shutil.which("caddy")
    if caddy is None:
        part_missing("caddy is not installed (`make test` installs Debian's caddy package)")
    caddyfile = installed.root / "etc/caddy/Caddyfile"
    text = caddyfile.read_text()
    assert text.startswith("# Generated by SmilePass")
    assert f"\n{HOST} {{\n" in text and "tls internal" not in text  # a public name: Let's Encrypt
    assert "reverse_proxy 127.0.0.1:8000\n" in text
    # The app's upload limit under the installed (default) settings.
    for name in ["SMILEPASS_MAX_SCAN_MB", "SMILEPASS_MAX_IMAGE_MB", "SECRET_KEY"]:
        monkeypatch.delenv(name, raising=False)
    assert f"max_size {config.load(str(tmp_path))['MAX_CONTENT_LENGTH']}\n" in text
    # Debian's own Caddyfile was kept, once.
    assert (installed.root / "etc/caddy/Caddyfile.before-smilepass").read_text() == DEBIAN_CADDYFILE
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config", str(caddyfile)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Valid configuration" in result.stdout + result.stderr, result.stderr[-3000:]


# --- changing the install: these run last, in this order -----------------------------------------------


def test_a_second_run_keeps_the_secret_key_and_the_admins_edits(installed):
    first = env_values(installed.first_env)
    text = installed.env_file.read_text()
    # The admin sets up mail, keeps more backups, moves to a local PostgreSQL, removes the PORT block.
    text = text.replace("#SMTP_HOST=mail.clinic.example", "SMTP_HOST=smtp.clinic.example")
    text = text.replace("SMILEPASS_BACKUP_KEEP=14", "SMILEPASS_BACKUP_KEEP=30")
    text = text.replace("SMILEPASS_BACKUP_DIR=/var/backups/smilepass", "SMILEPASS_BACKUP_DIR=/srv/backups/smilepass")
    text = re.sub(r"^DATABASE_URL=.*$", "DATABASE_URL=postgresql://smilepass@localhost/smilepass", text,
                  flags=re.MULTILINE)
    text = re.sub(r"\n# Only for `make run`.*?\n#PORT=8000\n", "\n", text, flags=re.DOTALL)
    text = text.replace(f"SMILEPASS_BASE_URL=https://{HOST}", f"SMILEPASS_BASE_URL=https://{HOST}/portal")
    assert "PORT=" not in text.replace("_PORT=", "")
    installed.env_file.write_text(text)
    os.chmod(installed.env_file, 0o600)  # made stricter by the admin
    (installed.app / "removed-upstream.py").write_text("")  # a file git pull deleted

    result = run_script("install.sh", installed.root)  # no HOST: the settings remember it
    assert result.returncode == 0, result.stderr[-5000:]
    after = installed.env_file.read_text()
    values = env_values(after)
    assert values["SECRET_KEY"] == first["SECRET_KEY"]
    assert values["SMTP_HOST"] == "smtp.clinic.example"
    assert values["SMILEPASS_BACKUP_KEEP"] == "30"
    assert values["SMILEPASS_BACKUP_DIR"] == "/srv/backups/smilepass"
    assert mode(installed.root / "srv/backups/smilepass") == 0o750  # made, so the units can start
    assert values["DATABASE_URL"] == "postgresql://smilepass@localhost/smilepass"
    assert values["SMILEPASS_BASE_URL"] == f"https://{HOST}/portal"  # no HOST given: the admin's links stay
    assert after.count("SECRET_KEY=") == 1 and after.count("SMTP_HOST=") == 1
    assert "#PORT=8000" in after  # the missing variable came back, with its comment
    assert mode(installed.env_file) == 0o640
    assert not (installed.app / "removed-upstream.py").exists()
    web = (installed.root / "etc/systemd/system/smilepass-web.service").read_text()
    assert "postgresql.service" in web  # the units follow the settings
    assert "ReadWritePaths=/var/lib/smilepass /srv/backups/smilepass\n" in web
    assert (installed.root / "etc/caddy/Caddyfile.before-smilepass").read_text() == DEBIAN_CADDYFILE


def test_a_new_host_name_changes_the_links_and_the_caddyfile(installed, tmp_path):
    result = run_script("install.sh", installed.root, HOST="smilepass.lan")
    assert result.returncode == 0, result.stderr[-5000:]
    values = env_values(installed.env_file.read_text())
    assert values["SMILEPASS_BASE_URL"] == "https://smilepass.lan" and values["SMILEPASS_HOST"] == "smilepass.lan"
    assert values["SMILEPASS_BACKUP_KEEP"] == "30"  # the rest of the admin's settings stay
    text = (installed.root / "etc/caddy/Caddyfile").read_text()
    assert "\nsmilepass.lan {\n\ttls internal\n" in text and HOST not in text  # a LAN name: Caddy's own CA
    assert "root.crt" in result.stderr  # the admin is told to trust that CA
    # Still the Caddyfile from before SmilePass, not the one of the first install.
    assert (installed.root / "etc/caddy/Caddyfile.before-smilepass").read_text() == DEBIAN_CADDYFILE


def test_upgrade_stops_when_the_backup_fails(installed, tmp_path, redis_url):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder's parent should be\n")
    settings = instance_settings(installed, tmp_path, redis_url, SMILEPASS_BACKUP_DIR=str(blocker / "backups"))
    assert smilepass_command(installed, settings, "migrate").returncode == 0
    shutil.copy(settings, installed.env_file)
    sentinel = installed.app / "upgrade-sentinel"
    sentinel.write_text("install.sh replaces the whole copy, this file included\n")

    result = run_script("upgrade.sh", installed.root)
    assert result.returncode == 1
    assert "backup failed, no archive was written" in result.stderr  # the app's own message
    assert "the backup failed, so the upgrade stops here" in result.stderr
    assert "copying the code" not in result.stderr
    assert sentinel.exists()
    assert not (blocker.parent / "backups").exists()


def test_upgrade_backs_up_installs_and_ends_with_the_doctors_verdict(installed, tmp_path, redis_url):
    settings = instance_settings(installed, tmp_path, redis_url)
    assert smilepass_command(installed, settings, "migrate").returncode == 0
    shutil.copy(settings, installed.env_file)
    sentinel = installed.app / "upgrade-sentinel"
    sentinel.write_text("install.sh replaces the whole copy, this file included\n")

    result = run_script("upgrade.sh", installed.root)
    archives = list((tmp_path / "backups").glob("smilepass-*.tar.gz"))
    assert len(archives) == 1, result.stderr[-5000:]
    assert "copying the code" in result.stderr and not sentinel.exists()
    # No worker and no rq cron run here, so the doctor reports a FAIL: the upgrade's status is its status.
    doctor = smilepass_command(installed, installed.env_file, "doctor")
    assert doctor.returncode == 1 and "FAIL" in doctor.stdout + doctor.stderr
    assert result.returncode == doctor.returncode
    assert "doctor reports a FAIL" in result.stderr
