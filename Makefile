# Turnscribe: `make demo` and `make test` set everything up on a fresh Debian machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := espeak-ng sox libsox-fmt-all ffmpeg libsndfile1 postgresql chromium chromium-driver

.PHONY: demo test system-deps venv benchmarks clean

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps Resemblyzer==0.1.4
	touch $(STAMP)

venv: system-deps $(STAMP)

demo: venv
	TURNSCRIBE_HOME=$${TURNSCRIBE_HOME:-turnscribe-data} $(VENV)/bin/turnscribe demo $(DEMO_ARGS)

test: venv
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q $(PYTEST_ARGS)

benchmarks: venv
	$(PY) benchmarks/coverage_bench.py
	$(PY) benchmarks/pretranscribe_bench.py
	$(PY) benchmarks/ui_bench.py
	$(PY) benchmarks/release_bench.py --sizes 1000,10000
	$(PY) benchmarks/editor_bench.py
	$(PY) benchmarks/alignment_bench.py

clean:
	rm -rf $(VENV) turnscribe-data .pytest_cache
