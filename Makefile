# Everything runs from .venv/ at the repo root; `make install` creates it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
MODELS ?= models
# Extra pip arguments for the torch CPU wheel (e.g. an index that serves it).
TORCH_PIP_ARGS ?=

.PHONY: install test check lint models serve bench bench-corpus docs image image-test stress clean

install: $(VENV)/.installed

# torch goes in first, as the CPU build, and constraints.txt keeps every later step from
# replacing it with a CUDA build. optimum-intel pulls in torchvision, which cannot load
# against CPU torch and breaks the export, and nothing here uses it: remove it.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[export,test,bench,docs]"
	$(BIN)/pip uninstall --quiet -y torchvision || true
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy serving

# Two tiers. `make test`, for every change: every module and API family end to end (real exports,
# a real server on loopback, real clients), without the tests marked `slow` (repetition at scale:
# the model families, load and soak, every fault step, cluster and benchmark runs). `make check`:
# every test; CI runs it. Session exports are cached in .cache/exports/ (tests/support/export_cache.py).
test: lint
	$(BIN)/pytest -v -m "not slow" --durations=25

check: lint
	$(BIN)/pytest -v --durations=25

# The demo repository: the real all-MiniLM-L6-v2 embedder and a small cross-encoder
# fine-tuned from it (built offline, cached in .cache/).
models: install
	$(BIN)/python -m tools.demo_models --model_repository_path $(MODELS)

serve: install
	@test -f $(MODELS)/config.json || $(MAKE) models
	$(BIN)/python -m serving --config_path $(MODELS)/config.json --rest_port $(PORT) --host $(HOST)

bench: install
	$(BIN)/python -m benchmark
	$(BIN)/python -m benchmark.corpus

# The corpus job alone: in-process and on a local two-node Ray cluster (needs root: namespaces).
bench-corpus: install
	$(BIN)/python -m benchmark.corpus

# The documentation site (docs/, mkdocs.yml) into site/; a broken link or anchor, or a page left out
# of the navigation, fails the build.
docs: install
	$(BIN)/python -m mkdocs build --strict

# The serving image (podman, no registry; installs podman and mmdebstrap when missing, as root).
# TARGET=export for the export image; BASE_IMAGE=<registry image> to skip the mmdebstrap base.
image:
	deploy/container/build.sh

# Build the serve image, run it on a loopback port against a mounted repository, serve a request.
image-test: install
	OVTEXT_IMAGE_TEST=1 $(BIN)/pytest -v tests/deploy/test_image.py

# The long forms of the load, soak and fuzzing tests (about 20 minutes on 2 cores); `make check`
# runs the same tests in their short forms (`make test` the fuzzing one). Prints one summary line per test at the end.
STRESS_SUMMARY := .cache/stress-summary.txt
stress: install
	@mkdir -p .cache && rm -f $(STRESS_SUMMARY)
	OVTEXT_STRESS=long OVTEXT_FUZZ_EXAMPLES=500 OVTEXT_STRESS_SUMMARY=$(CURDIR)/$(STRESS_SUMMARY) \
		$(BIN)/pytest -v tests/server/test_stress.py tests/server/test_fuzz.py; \
		status=$$?; echo; echo "== stress summary"; cat $(STRESS_SUMMARY) 2>/dev/null; exit $$status

clean:
	rm -rf $(VENV) .cache $(MODELS) benchmark/work site
