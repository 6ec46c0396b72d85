# Community Compute — every entry point a new user needs. Only python3 is assumed; the rest
# is installed from the lock file into .venv by a pinned uv.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test bench lint setup up down status schema clean

run: setup  ## set up, start the embedded stack, every service and the demo, stay attached (Ctrl-C stops)
	$(VENV)/bin/ccn up --foreground --demo

test: setup  ## set up and run every test (two workers: most of a test's time is waiting on servers)
	$(VENV)/bin/python -m pytest -n 2

bench: setup  ## print the benchmark report and write it to bench/results/
	$(VENV)/bin/python -m bench

lint: setup  ## ruff, then mypy (strict on libs/core and proto), then hadolint on the Dockerfile
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

setup: $(VENV)/.synced

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml */*/pyproject.toml proto/pyproject.toml
	$(UV) sync --frozen --all-packages --group dev
	touch $@

down:
	$(VENV)/bin/ccn down

status:
	$(VENV)/bin/ccn status

clean:
	-$(VENV)/bin/ccn down
	rm -rf .ccn $(VENV) $(TOOLS)
