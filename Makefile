# Two entry points: `make run` (set up, then start the app) and `make test` (set up, then test).
# Set-up is idempotent: each stamp is rebuilt only when its requirements change.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup run test system-deps benchmarks

# Runtime: torch 2.13 (CPU build, first, so nothing pulls a CUDA build), requirements.txt, and
# the project itself in editable mode so echo_core and workbench import from anywhere.
$(RUN_STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'setuptools<81' wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(RUN_STAMP)

# Tests and notebooks on top of the runtime.
$(TEST_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(TEST_STAMP)

setup: $(RUN_STAMP)

run: setup
	$(BIN)/python app.py

# Browser and corpus tests need Debian's chromium and espeak-ng; install them when we can.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null 2>&1 \
	    || ! command -v flite >/dev/null 2>&1 || ! command -v text2wave >/dev/null 2>&1 \
	    || [ ! -d /usr/share/festival/voices/english/ked_diphone ] \
	    || [ ! -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium espeak-ng sox flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts >/dev/null; \
	  else echo "note: chromium/espeak-ng/flite/festival missing and not root: browser and corpus tests will be skipped (ECHO_STRICT=1 makes a skip an error)"; fi; \
	fi

test: $(TEST_STAMP) system-deps
	BROWSER_PATH=/usr/bin/chromium $(BIN)/python -m pytest -q

benchmarks: $(TEST_STAMP)
	$(BIN)/python -m benchmarks.run_all
