# Two commands set everything up on a fresh machine:
#   make run    install (first time) and start the app on its embedded offline model
#   make test   install (first time) and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# llama-cpp-python's default build uses -march=native, which enables AMX on some
# CPUs and crashes at the first completion. Build a portable library instead.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo ">> Installing synth-tui. The first install compiles llama-cpp-python for the"
	@echo ">> embedded model: about 6-8 minutes on 2 cores. pip caches the wheel afterwards."
	$(BIN)/pip install --progress-bar off -e ".[local,dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/synth-tui

test: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/store_scale.py
	$(BIN)/python bench/report_scale.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/tui_overhead.py
	$(BIN)/python bench/local_model.py

clean:
	rm -rf $(VENV) build dist *.egg-info
