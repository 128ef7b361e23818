# The two entry points of the README: `make demo` (main job) and `make test`.
# Both create .venv on first use; torch is installed first so pip picks the CPU build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	rm -rf runs/demo
	HF_HUB_OFFLINE=1 $(BIN)/auditdm audit -o runs/demo

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -ra
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache
