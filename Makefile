# SmilePass developer tasks. `make help` lists them.
#
# Installs are tracked with stamp files (.venv/.installed,
# node_modules/.installed), so a second `make setup` does nothing but check
# that the Debian packages are still there.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HTMX := static/vendor/htmx.min.js
HTMX_SSE := static/vendor/htmx-ext-sse.min.js
# three.js for the 3D scan viewer (docs/viewer.md): the core and the three add-ons the viewer imports.
THREE := static/vendor/three/three.module.js
THREE_ADDONS := controls/OrbitControls.js loaders/GLTFLoader.js utils/BufferGeometryUtils.js utils/SkeletonUtils.js

# Debian packages every task needs: Redis is the job queue's broker.
# scripts/system-deps.sh adds python3-venv and nodejs/npm itself when they
# are missing.
DEBS := redis-server
# Target-specific additions reach system-deps through the prerequisite
# chain, so each target still runs apt at most once.
# pg_dump/pg_restore for the backup tests' PostgreSQL pass; any installed client counts (Debian's
# server package brings a versioned one without the postgresql-client metapackage).
# libusb is loaded by open3d-cpu, which only the tests use (a reference renderer and repairer).
test: DEBS += chromium chromium-driver caddy dovecot-imapd libusb-1.0-0 $(if $(shell command -v pg_restore),,postgresql-client)
bench: DEBS += wrk

# No `export` of PORT, REDIS_URL etc. here: make already hands variables
# from the environment or the command line (make run PORT=8000) to the
# scripts, and exporting an unset one would pass it on as empty.

.PHONY: help setup system-deps run migrate worker test lint bench clean translations install upgrade

help:
	@echo 'make setup    install Debian packages, .venv, npm packages, $(HTMX)'
	@echo 'make run      setup + migrate, then Redis (if needed), a worker and the web server'
	@echo 'make migrate  apply database migrations'
	@echo 'make worker   run one RQ worker (uses REDIS_URL)'
	@echo 'make test     setup + Chromium and Caddy, then pytest on SQLite and on PostgreSQL'
	@echo '              (PYTEST_ARGS="-k auth -x" passes arguments to pytest)'
	@echo 'make lint     ruff: style, import order and likely bugs (make test runs it first)'
	@echo 'make bench    setup + wrk, then bench/web.py'
	@echo 'make translations  re-extract marked strings and update the catalogues (then translate the new ones)'
	@echo 'make clean    remove .venv, node_modules and static/vendor (keeps instance/)'
	@echo 'sudo make install HOST=portal.clinic.example  install as services: /opt/smilepass, systemd units,'
	@echo '              Caddy with HTTPS, nightly backups (TLS=internal for a LAN-only name; docs/install.md)'
	@echo 'sudo make upgrade  after git pull: backup (stops if it fails), install, migrate, restart, doctor'

# Translations: the .po catalogues are source (in git), the .mo files build output.
PO_FILES := $(wildcard smilepass/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

setup: system-deps $(VENV)/.installed $(HTMX) $(HTMX_SSE) $(THREE) $(MO_FILES)

%.mo: %.po | $(VENV)/.installed
	$(BIN)/pybabel compile -i $< -o $@

# Re-extract every marked string (babel.cfg) and merge it into each language's catalogue; new and
# changed strings come out untranslated or fuzzy, and tests/test_i18n.py fails until they are done.
translations: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k MeshRejected -k Phrase -k Sentence --no-wrap --sort-by-file --project=SmilePass \
		--copyright-holder=SmilePass -o smilepass/translations/messages.pot .
	$(BIN)/pybabel update -i smilepass/translations/messages.pot -d smilepass/translations --no-wrap \
		--ignore-obsolete
	$(MAKE) $(MO_FILES)

system-deps:
	@bash scripts/system-deps.sh $(DEBS)

# Order-only on system-deps: python3-venv/npm must be there first, but an
# always-run phony target must not make the stamps look out of date.
$(VENV)/.installed: pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund
	touch $@

# Served from our own origin: the portal must not depend on a CDN.
$(HTMX): node_modules/.installed
	mkdir -p $(@D)
	cp node_modules/htmx.org/dist/htmx.min.js $@

# The SSE extension for htmx 2 (live ticket pages, docs/live.md), served the same way.
$(HTMX_SSE): node_modules/.installed
	mkdir -p $(@D)
	cp node_modules/htmx-ext-sse/dist/sse.min.js $@

# The add-ons import the bare name 'three', which a browser resolves only through an import map (an
# inline script the CSP forbids): the copies import the core by its path instead.
$(THREE): node_modules/.installed
	mkdir -p $(@D)/controls $(@D)/loaders $(@D)/utils
	cp node_modules/three/build/three.core.js $(@D)/
	for f in $(THREE_ADDONS); do \
		sed "s#from 'three';#from '../three.module.js';#" node_modules/three/examples/jsm/$$f > $(@D)/$$f || exit 1; \
	done
	cp node_modules/three/build/three.module.js $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .

migrate: $(VENV)/.installed
	$(BIN)/flask --app app migrate

run: setup migrate
	@exec bash scripts/run.sh

worker: $(VENV)/.installed
	@exec $(BIN)/python -m workers.worker

# Lint first: a finding fails the run before the tests start.
test: setup lint
	@exec bash scripts/test.sh

bench: setup
	$(BIN)/python bench/web.py

# Production: services under systemd behind Caddy (docs/install.md). Only htmx is built here (npm);
# the installer makes its own runtime venv and compiles the translations into /opt/smilepass.
# HOST, TLS, DESTDIR, DATABASE_URL and REDIS_URL reach the scripts from the command line.
install: $(HTMX) $(HTMX_SSE) $(THREE)
	@bash scripts/install.sh

upgrade: $(HTMX) $(HTMX_SSE) $(THREE)
	@bash scripts/upgrade.sh

clean:
	rm -rf $(VENV) node_modules static/vendor *.egg-info
