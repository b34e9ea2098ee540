# Posture: `make demo` runs the product with demo data, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# DEBUG defaults to true in settings; production sets DEBUG=false, SECRET_KEY and the signing key.

.PHONY: install demo serve test test-sqlite test-postgres lint format bench bench-slis bench-opa bench-pages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py runserver $(HOST)

serve: install
	$(BIN)/python manage.py runserver $(HOST)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/ingest.py

bench-slis: install
	$(BIN)/python bench/slis.py

bench-opa: install
	$(BIN)/python bench/opa.py

# Page render times on the data set bench-slis leaves behind.
bench-pages: install
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
