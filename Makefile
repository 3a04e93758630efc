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

.PHONY: help install run pipeline test lint format bench bench-stream stream-demo postgres-start postgres-stop clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.installed ## Create .venv from uv.lock (bytecode precompiled)

run: install ## Run the whole pipeline on the embedded DuckDB warehouse and print the headline numbers
	$(CONTRAIL) run

pipeline: install ## The same as `make run`, never serving; always exits
	$(CONTRAIL) run --no-serve

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

test: install lint postgres-start ## Lint, then every test (DuckDB, PostgreSQL, dbt, real data when present)
	$(VENV)/bin/pytest

bench: install ## Benchmarks: generate, enrich vs naive baseline, load, dbt build, pipeline
	$(CONTRAIL) bench

stream-demo: install ## Start the API and the micro-batch runner, replay surveys into them, stop cleanly
	$(CONTRAIL) stream demo

bench-stream: install ## Stream benchmarks: API posts, delivery-object loader
	$(CONTRAIL) bench --stream

clean: ## Remove generated data and the venv
	-scripts/postgres.sh stop
	rm -rf data $(VENV) $(TOOLS) target logs
