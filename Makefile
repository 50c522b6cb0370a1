# flowviz — `make run` starts the app, `make test` runs every test. Both install into .venv first.
#
# Torch: if .venv has no importable torch, `make venv` installs $(TORCH_SPEC) first. To use a
# CUDA (or any other) build, install your own torch into .venv before running make, e.g.
#   python3 -m venv .venv && .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cu124
# or pass extra pip arguments: make venv TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: venv run test lint

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	@if $(BIN)/python -c "import torch" >/dev/null 2>&1; then \
		echo "torch already installed: $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	else \
		$(BIN)/pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"; \
	fi
	$(BIN)/pip install -r requirements.txt
	touch $(STAMP)

run: venv
	$(BIN)/python -m views.launch

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
