# Two entry points for a newcomer: `make run` (install + app on the bundled models) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# llama.cpp for the GGUF rows. GGML_NATIVE=ON dies with "Illegal instruction" in the quantized kernels on CPUs that
# report AMX / AVX512-BF16 (see README): build for AVX2 + AVX512F explicitly instead.
GGUF_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \
	-DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: run test install install-dev lint models mutate

run: install
	$(PY) app.py

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first, from the CPU wheel (a plain dependency resolution would fetch a CUDA build)
	$(PIP) install torch==2.13.0
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-gguf.txt $(VENV)/.installed
	$(PIP) install -r requirements-dev.txt
	# optional extra, built from source (~10 min); --no-cache-dir: never reuse a wheel built with other flags
	CMAKE_ARGS="$(GGUF_CMAKE_ARGS)" $(PIP) install --no-cache-dir -r requirements-gguf.txt
	# llama.cpp's converter ships only in that sdist: keep it in the cache, matching the installed version
	$(PY) -m core.quant.gguf.converter
	bash scripts/install_chromium.sh
	touch $@

# Rebuild the bundled checkpoints in assets/models (minutes on 2 CPU cores; seeded). The bundled deepseek-vl-tiny
# is still the one scripts/train_vision_model.py trained at commit 0e07356 (600 stage-1 + 500 stage-2 steps, grid
# drawings only); today's script trains issue 15's varied recipe (8500 stage-1 steps with a pool of mirrored images
# and per-token shape labels, then 1350 stage-2 steps at batch 16; 584-606 CPU-s), which replaces it once it meets that
# issue's goals (scripts/vision_goals.py scores a checkpoint). Each training_report.json records the arguments.
models: install
	$(PY) scripts/train_text_models.py
	$(PY) scripts/train_vision_model.py

# Mutation testing (not part of `make test` or CI; minutes per module on 2 cores). One module at a time; each mutant
# runs only the fast tests (pyproject.toml [tool.mutmut]) that reach the mutated function. Results: mutmut results.
MUTATE ?= core.models.budget core.quant.backends core.serving.batch_state core.generation.prompting \
	core.serving.registry core.serving.batching
mutate: install-dev
	for module in $(MUTATE); do $(PY) -m mutmut run --max-children 1 "$$module.*" || exit 1; done
	$(PY) -m mutmut results
