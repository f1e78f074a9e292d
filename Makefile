# Two commands for a fresh machine: `make demo` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(or $(AFFECTSTREAM_SHARED),../shared)
export AFFECTSTREAM_SHARED := $(SHARED)

.PHONY: demo test lint bench venv venv-dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The runtime (the `worker` extra: decoding, detection, ONNX Runtime on CPU), no torch.
$(VENV)/.runtime: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[worker]'
	touch $@

# Tests need the train extra (torch, timm) and the UI extra as well.
$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[worker,train,ui,dev]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/affectstream demo

test: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not slow"

# Style, and the import contract of pyproject.toml [tool.importlinter]: the layers and no cycles.
# Style (ruff check + ruff format), layers (import-linter), types (mypy on the runtime packages).
# affectstream/ links pipeline, engines and training in: name its own files, not the links.
LINTED := pipeline engines training affectstream/settings affectstream/scoring affectstream/__init__.py affectstream/api.py \
	affectstream/__main__.py tests bench
lint: $(VENV)/.dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports
	$(BIN)/mypy affectstream/pipeline affectstream/engines

# The benchmark, then the camera capacity of this machine (written to var/capacity.json for fleet members).
bench: $(VENV)/.runtime
	$(BIN)/python -m bench
	$(BIN)/python -m bench capacity

clean:
	rm -rf $(VENV) var .pytest_cache
