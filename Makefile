# Porch Light: `make run` serves it, `make test` tests it. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 2
FLASK  := $(BIN)/flask --app wsgi

.PHONY: run test lint format migrate seed translations extract-messages scale-out bench-totals bench-demo bench-stream bench-stream-flood bench-throughput bench-instructions bench-import clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pinned requirements change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed

# Compiled translations are built here, not committed.
MO := $(patsubst %.po,%.mo,$(wildcard pledges/translations/*/LC_MESSAGES/messages.po))

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

translations: $(MO)

migrate: $(VENV)/.installed translations
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) pledges seed

run: seed
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

test: $(VENV)/.installed-dev translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two instances on one PostgreSQL and one Redis (they must be running; see README).
scale-out: $(VENV)/.installed-dev
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(BIN)/python -m pytest tests/test_scale_out.py -v

bench-totals: $(VENV)/.installed-dev
	$(BIN)/python bench/totals_flat.py $(BENCH_ARGS)

bench-demo: $(VENV)/.installed-dev
	$(BIN)/python bench/demo_speed.py $(BENCH_ARGS)

# After changing visible text: extract, then translate the new entries in each messages.po.
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -o pledges/translations/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i pledges/translations/messages.pot -d pledges/translations --no-fuzzy-matching --ignore-obsolete

bench-throughput: $(VENV)/.installed-dev
	$(BIN)/python bench/throughput.py $(BENCH_ARGS)

# Needs valgrind (apt-get install valgrind).
bench-instructions: $(VENV)/.installed-dev
	$(BIN)/python bench/instructions.py $(BENCH_ARGS)

bench-stream: $(VENV)/.installed-dev
	$(BIN)/python bench/stream_load.py $(BENCH_ARGS)

# One client opens 4,200 streams: /healthz, / and pledges must keep p95 ≤ 250 ms (--uncapped: before).
bench-stream-flood: $(VENV)/.installed-dev
	$(BIN)/python bench/stream_flood.py $(BENCH_ARGS)

bench-import: $(VENV)/.installed-dev
	$(BIN)/python bench/import_speed.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
