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

$(STAMP): requirements.txt requirements-fid.txt | $(BIN)/python
	@if $(BIN)/python -c "import torch" >/dev/null 2>&1; then \
		echo "torch already installed: $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	else \
		$(BIN)/pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"; \
	fi
	$(BIN)/pip install -r requirements.txt
	@# standard FID (flowviz/images/fid.py), see requirements-fid.txt: torchvision 0.28.0 is the
	@# release for torch 2.13.0, but its PyPI wheel is a CUDA build that cannot import beside a
	@# CPU torch; then both are uninstalled again. The torch-fidelity 0.4.0 wheel also installs a
	@# top-level `tests` package that would shadow this project's tests/: it is removed.
	@if [ "$$($(BIN)/python -c 'import torch; print(torch.__version__.split("+")[0])')" = 2.13.0 ]; then \
		$(BIN)/pip install -r requirements-fid.txt && \
		rm -rf "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/tests"; \
		$(BIN)/python -c "import torch_fidelity" >/dev/null 2>&1 || { \
			echo "torch-fidelity does not import beside this torch build: uninstalled (requirements-fid.txt)"; \
			$(BIN)/pip uninstall -y torch-fidelity torchvision; }; \
	else \
		echo "torch is not 2.13.0: requirements-fid.txt (standard FID) not installed, see that file"; \
	fi
	touch $(STAMP)

run: venv
	$(BIN)/python -m views.launch

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
