# Posture: `make demo` runs the product with demo data, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# DEBUG defaults to true in settings; production sets DEBUG=false, SECRET_KEY and the signing key.

.PHONY: install demo serve test test-clock lint format bench bench-slis bench-opa bench-pages clean

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

# The suite (SQLite, no browser) with the clock set by libfaketime to instants a run at any hour
# may meet: just after midnight UTC, after noon, across the end of a year mid-run, and months
# on. Pages and rollups cut time into hours and days: a test that passes only in the morning
# fails CI in the afternoon, and one whose data sits on a fixed day fails once that day is old.
# SQLite takes its clock from this process, so the database moves too.
CLOCK_INSTANTS := "2026-11-26 00:03:00" "2026-11-26 12:30:00" "2026-12-31 23:58:30" "2027-06-15 09:00:00"
test-clock: install
	@command -v faketime >/dev/null || { echo "test-clock needs libfaketime (apt-get install faketime)" >&2; exit 1; }
	@for instant in $(CLOCK_INSTANTS); do \
		echo "== the suite at $$instant UTC"; \
		DATABASE_URL= TZ=UTC faketime -f "@$$instant" $(BIN)/python -m pytest -q -p no:cacheprovider \
			--ignore=tests/browser || exit 1; \
	done

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
