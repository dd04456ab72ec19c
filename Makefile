# Two commands do all the set-up: `make demo` and `make test` (each bootstraps .venv when missing).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrapped
PYTEST_ARGS ?=

.PHONY: demo test test-fast bench lock clean-venv

$(STAMP): setup.py requirements/lock.txt tools/bootstrap.sh
	bash tools/bootstrap.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tfmodels.examples.quickstart

# Everything, the slow end-to-end tests included (CI runs this).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Day-to-day: skip the end-to-end tests.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/bert_train.py

# Refresh the lock file from the current environment.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements/lock.txt

clean-venv:
	rm -rf $(VENV)
