# The two commands of the README contract: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs. torch is installed FIRST and pinned
# (constraints.txt): letting a dependency pull an unpinned torch downloads a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.unitune-installed
PYTEST_ARGS ?=

.PHONY: demo test install clean-venv bench

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[all,dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/unitune demo

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/validate_throughput.py
	$(PY) benchmarks/local_throughput.py

clean-venv:
	rm -rf $(VENV)
