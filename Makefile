# The two commands of the README:
#   make demo   sets up .venv (first run only) and runs the main job on the built-in default
#   make test   sets up .venv (first run only) and runs every test
# Set PYTHON to choose the interpreter (Python 3.10 or newer; 3.11 is what CI uses).
# .venv is the development environment: the runtime and every workbench extra of setup.py
# (export, train, sim, record, workbench, dev), pinned in requirements.txt. A robot installs only
# the runtime (README, "Installing on a robot").

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test env clean-env

demo: $(STAMP)
	$(VENV)/bin/depth-estimation demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

env: $(STAMP)

# Reinstalled only when the dependency files change, so a second run starts at once.
$(STAMP): requirements.txt setup.py setup.cfg package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps tensorrt-stubs==10.13.0.35.1
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

clean-env:
	rm -rf $(VENV)
