# make demo / make test on a fresh machine with only Python: each target installs
# what is missing (a virtualenv with the package, then a Chromium) and runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pixelcheck-installed
PYTEST_ARGS ?=

.PHONY: install browser demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "python venv module missing: install python3-venv" >&2; exit 1; fi; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

browser: $(STAMP)
	$(PY) -m pytest_pixelcheck.cli install-browser

demo: browser
	$(PY) -m pytest_pixelcheck.cli demo

test: browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pytest_pixelcheck tests example_site benchmarks

bench: browser
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
