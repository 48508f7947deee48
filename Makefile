# make quickstart : run the main job offline on the bundled sample (installs what it needs into .venv)
# make test       : run the test suite, every tier (installs what it needs into .venv)
# make test-fast  : the unit tier (tests/unit: in-process, refusals, parsing), under 3 minutes
# make lint       : ruff check (configured in pyproject.toml)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
# llama-cpp-python (dev: the GGUF tests) builds llama.cpp from source. Not -march=native: a CPU may report AMX or
# AVX-512 that its VM does not let a process use (an "Illegal instruction" in the k-quant kernels, seen here).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export HF_HUB_OFFLINE := 1
export OMP_NUM_THREADS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv dev lint test test-fast quickstart bench clean

# What the pipeline runs (make quickstart): the stack and the offline models and data.
$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

# What the tests need besides (make test, make lint): pytest, ruff, llama-cpp-python for the GGUF tests, and
# lm-eval (requirements-eval.txt, an optional extra for users) for evaluate_model.py's lm-eval tests.
$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt requirements-eval.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# unbabel-comet (check_translations.py --qe_model) in its own environment: it needs transformers 4.
COMET_VENV := .venv-comet
$(COMET_VENV)/.installed: requirements-qe.txt
	$(PYTHON) -m venv $(COMET_VENV)
	$(COMET_VENV)/bin/python -m pip install -q --upgrade pip
	$(COMET_VENV)/bin/python -c "import torch" 2>/dev/null || $(COMET_VENV)/bin/python -m pip install -q $(TORCH)
	$(COMET_VENV)/bin/python -m pip install -q -r requirements-qe.txt
	touch $@

dev: $(VENV)/.dev-installed $(COMET_VENV)/.installed

lint: dev
	$(VENV)/bin/ruff check .

test: dev
	$(PY) -m pytest -n 2 -q tests

test-fast: dev
	$(PY) -m pytest -n 2 -q tests/unit

quickstart: venv
	OMP_NUM_THREADS=2 bash scripts/quickstart.sh

bench: venv
	$(PY) bench/translate_throughput.py

clean:
	rm -rf $(VENV) $(COMET_VENV) .pytest_cache quickstart_output
