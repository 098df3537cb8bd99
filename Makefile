# make demo / make test on a fresh machine with only Python: each target installs
# what is missing (a virtualenv with the package, then a Chromium) and runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.pixelcheck-installed
PYTEST_ARGS ?= -n 2

.PHONY: install browser node-sdk demo test typecheck lint bench clean

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

NODE_CAPI := example_site/node_capi

# Meta's Node SDK for the shop's Node sender: npm ci when node_modules is missing or
# older than package-lock.json. Without npm it is skipped (its tests then skip, and
# fail under CI=true, where it must be there).
node-sdk:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found: skipping the Node SDK install"; \
	elif [ ! -d $(NODE_CAPI)/node_modules ] || \
	     [ $(NODE_CAPI)/package-lock.json -nt $(NODE_CAPI)/node_modules/.package-lock.json ]; then \
	  cd $(NODE_CAPI) && npm ci --no-audit --no-fund; \
	else echo "Node SDK is up to date"; fi

browser: $(STAMP)
	$(PY) -m pytest_pixelcheck.cli install-browser

demo: browser
	$(PY) -m pytest_pixelcheck.cli demo

# mypy --strict over the public API (the module list is [tool.mypy] in pyproject.toml);
# before the tests, so a typing break fails fast
typecheck: $(STAMP)
	$(PY) -m mypy

test: browser node-sdk typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pytest_pixelcheck tests example_site benchmarks

bench: browser
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .hypothesis $(NODE_CAPI)/node_modules
