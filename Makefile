# cdr-platform: every target installs what it needs, idempotently (uv, the locked venv, npm packages).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
NPM_DIR := cdr_platform/devstack/npm

MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project/models dbt_project/macros -type f 2>/dev/null) \
	dbt_project/dbt_project.yml dbt_project/profiles.yml

.PHONY: install chromium postgresql prepare demo test test-fast dev docs lint format clean

install: $(VENV)/.synced $(NPM_DIR)/node_modules/.installed chromium postgresql

# The dashboard's browser test drives Debian's chromium headless (Playwright's download fails here).
chromium:
	@command -v chromium >/dev/null || { \
	  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is missing and could not be installed (apt-get install -y chromium, as root): the dashboard's browser test will be skipped" >&2; }

# The production-shaped devstack profile (and its tests) run Debian's PostgreSQL 15 server binaries.
PG_BIN := /usr/lib/postgresql/15/bin
postgresql:
	@test -x $(PG_BIN)/postgres -a -x $(PG_BIN)/initdb || { \
	  { apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null; } || \
	  { echo "PostgreSQL 15 is missing and could not be installed (apt-get install -y postgresql-15, as root): the production profile cannot start" >&2; exit 1; }; }

# Dagster loads dbt's manifest and never runs dbt while loading: parse it here when a model changes.
prepare: install $(MANIFEST)
	@$(VENV)/bin/python -m compileall -q cdr_platform tests bench >/dev/null

$(MANIFEST): $(VENV)/.synced $(DBT_SOURCES)
	$(VENV)/bin/python -m cdr_platform.defs.transform.prepare --force

# Bytecode is compiled at install: these machines set PYTHONDONTWRITEBYTECODE, so without it every
# Python process (run workers, dbt, the CLI) compiles its imports from source, ~3 s of CPU each.
$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "Node.js and npm are missing: install Node.js 20 or newer (it ships npm), then run make again." >&2; exit 1; }
	npm ci --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

demo: prepare
	$(VENV)/bin/cdr-platform demo

test: prepare
	$(VENV)/bin/pytest
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The quick tier: unit tests only (no endpoint, no dbt), under a minute.
test-fast: prepare
	$(VENV)/bin/pytest -m "unit and not slow" -q
	$(VENV)/bin/ruff check .

dev: prepare
	$(VENV)/bin/cdr-platform dev

# dbt's docs site, offline, at http://127.0.0.1:$(DOCS_PORT) until Ctrl-C (the lake's catalog when one exists).
DOCS_PORT ?= 8080
docs: prepare
	$(VENV)/bin/python -m cdr_platform.defs.transform.docs --port $(DOCS_PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	-$(VENV)/bin/cdr-platform devstack down
	rm -rf .data dbt_project/target dbt_project/logs
