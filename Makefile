# Two entry points: `make run` (set up, then start the app) and `make test` (set up, then test).
# Set-up is idempotent: the venv is rebuilt only when requirements.txt changes.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test system-deps benchmarks

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 'setuptools<81' wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python app.py

# Browser tests need Debian's chromium; install it (and espeak-ng, sox) when we can.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium espeak-ng sox >/dev/null; \
	  else echo "note: chromium/espeak-ng missing and not root: browser and corpus tests will be skipped"; fi; \
	fi

test: setup system-deps
	BROWSER_PATH=/usr/bin/chromium $(BIN)/python -m pytest -q

benchmarks: setup
	$(BIN)/python -m benchmarks.run_all
