# The two commands: `make run` (the app with demo data) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 5000
export FLASK_APP := wsgi

.PHONY: run test bench services chromium venv lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/flask db upgrade
	$(VENV)/bin/flask seed-demo
	@echo "AutoDoctor on http://127.0.0.1:$(PORT)  (embedded mode: SQLite, in-process events, jobs and sweep)"
	PORT=$(PORT) WEB_CONCURRENCY=1 ACCESS_LOG=1 $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "Postgres/Redis did not start"; exit 1

test: venv chromium services
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv services
	$(PY) bench/run.py

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf var .pytest_cache
