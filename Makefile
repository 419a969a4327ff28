# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/pip
PY     := $(VENV)/bin/python

.PHONY: demo test test-fast lint install install-test install-openai-whisper bench clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(PIP) install -q -e .
	$(VENV)/bin/genjin speech install >/dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(VENV)/.installed-openai-whisper
	$(PIP) install -q -e '.[test]'
	touch $@

# openai-whisper's metadata asks for triton (GPU); CPU torch plus --no-deps avoids it.
$(VENV)/.installed-openai-whisper: $(VENV)/.installed
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q --no-deps openai-whisper==20250625
	$(PIP) install -q 'tiktoken>=0.7' 'numba>=0.60' 'more-itertools>=10'
	touch $@

install-openai-whisper: $(VENV)/.installed-openai-whisper

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(VENV)/bin/genjin demo

# Layer contracts (import-linter, see [tool.importlinter] in pyproject.toml).
lint: install-test
	$(VENV)/bin/lint-imports

# Everything, as CI runs it: layer contracts, then the whole suite including the real speech model.
test: lint
	$(PY) -m pytest -q -p no:cacheprovider

# For development: contracts and every test except the slow ones (real speech model, subprocess restarts).
test-fast: lint
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

bench: install
	$(PY) benchmarks/pipeline_bench.py

clean:
	rm -rf $(VENV) build *.egg-info genjin-demo.db*
