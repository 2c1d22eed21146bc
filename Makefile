VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 6333
STORAGE ?= ./storage

.PHONY: serve test lint install bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/tessera serve --port $(PORT) --storage $(STORAGE)

lint: install
	$(VENV)/bin/ruff format --check tessera tests bench
	$(VENV)/bin/ruff check tessera tests bench
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q -x

bench: install
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) storage
