# Contrail: `make run` runs the whole pipeline, `make test` runs every check.
# Both bootstrap their own environment (uv, then a venv from uv.lock).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
CONTRAIL := $(VENV)/bin/contrail

export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
export CONTRAIL_PG_PORT ?= 54329

.PHONY: help install run pipeline dashboard test lint format bench bench-stream bench-dashboards stream-demo postgres-start postgres-stop chromium clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.installed ## Create .venv from uv.lock (bytecode precompiled)

run: install ## Run the whole pipeline on the embedded DuckDB warehouse, then serve the dashboards on 127.0.0.1:8501
	$(CONTRAIL) run

pipeline: install ## The same as `make run`, never serving; always exits
	$(CONTRAIL) run --no-serve

dashboard: install ## Serve the dashboards alone over the published snapshot (127.0.0.1:8501)
	$(CONTRAIL) dashboard

postgres-start: ## Start the project PostgreSQL server on 127.0.0.1:$(CONTRAIL_PG_PORT)
	scripts/postgres.sh start

postgres-stop: ## Stop it
	scripts/postgres.sh stop

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

chromium: ## Install Debian's chromium for the browser tests when it is missing (needs root)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium missing: installing Debian's chromium package for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || { echo "could not install chromium"; [ -z "$$CI" ] || exit 1; }; \
	  else \
	    echo "not root: run 'sudo apt-get install chromium'; the browser tests skip without it"; \
	    [ -z "$$CI" ] || exit 1; \
	  fi; }

test: install lint postgres-start chromium ## Lint, then every test (DuckDB, PostgreSQL, dbt, browser, real data when present)
	$(VENV)/bin/pytest

bench: install ## Benchmarks: generate, enrich vs naive baseline, load, dbt build, pipeline
	$(CONTRAIL) bench

stream-demo: install ## Start the API and the micro-batch runner, replay surveys into them, stop cleanly
	$(CONTRAIL) stream demo

bench-stream: install ## Stream benchmarks: API posts, delivery-object loader
	$(CONTRAIL) bench --stream

bench-dashboards: install ## Each dashboard page's first view at 1M surveys, against its queries alone
	$(CONTRAIL) bench --dashboards

clean: ## Remove generated data and the venv
	-scripts/postgres.sh stop
	rm -rf data $(VENV) $(TOOLS) target logs
