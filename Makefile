# grok-lab: `make demo` and `make test` set everything up on a fresh machine (only python3 needed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2

.PHONY: setup demo test test-fast lint format bench bench-gpu gpu-aot notebooks clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/grok demo

test: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m benchmarks

# on a machine with an NVIDIA GPU: JAX's CUDA wheels (the `cuda` extra) go into the venv only here
bench-gpu: $(STAMP)
	$(PY) -m pip install --quiet -e ".[cuda]"
	benchmarks/gpu.sh

# on any machine, no GPU needed: compile [D]'s step for an H200 and report its Triton kernels
# (benchmarks/gpu_aot.py); JAX's CUDA wheels go into a venv of their own, never into .venv
gpu-aot:
	test -x .venv-cuda/bin/python || $(PYTHON) -m venv .venv-cuda
	.venv-cuda/bin/python -m pip install --quiet --upgrade pip
	.venv-cuda/bin/python -m pip install --quiet -e ".[cuda]"
	.venv-cuda/bin/python -m benchmarks.gpu_aot

# JupyterLab and ipywidgets (the `notebook` extra) go into the venv only here, never in setup or test
notebooks: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,notebook]"
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .venv-cuda .pytest_cache .ruff_cache runs
