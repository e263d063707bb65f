# cdr-platform: every target installs what it needs, idempotently (uv, the locked venv, npm packages).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
NPM_DIR := cdr_platform/devstack/npm

.PHONY: install demo test dev lint format clean

install: $(VENV)/.synced $(NPM_DIR)/node_modules/.installed

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "Node.js and npm are missing: install Node.js 20 or newer (it ships npm), then run make again." >&2; exit 1; }
	npm ci --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(VENV)/bin/cdr-platform demo

test: install
	$(VENV)/bin/pytest
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

dev: install
	$(VENV)/bin/cdr-platform dev

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	-$(VENV)/bin/cdr-platform devstack down
	rm -rf .data dbt_project/target dbt_project/logs
