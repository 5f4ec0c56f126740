# Lookalike: `make demo` serves the demo shop, `make test` runs the test suite.
# Each target sets up its own virtual environment first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format browser clean bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) manage.py demo

browser:
	@bash scripts/ensure-chromium.sh

test: install browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# Benchmarks (issue 7): each script measures its baseline in the same run and writes a section
# into docs/benchmarks/; bench_report.py assembles docs/benchmarks.md. About 30 min on 2 cores.
# bench_embedding_gpu needs a CUDA GPU (about 6 min on an H100) and skips itself without one.
BENCH_SCRIPTS := bench_embedding bench_embedding_gpu bench_upload_search bench_index bench_api

bench: install
	@for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(PY) scripts/$$script.py || exit 1; done
	$(PY) scripts/bench_report.py

bench-quick: install
	@for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(PY) scripts/$$script.py --quick --out var/bench-quick || exit 1; done
	$(PY) scripts/bench_report.py --dir var/bench-quick --out var/bench-quick/benchmarks.md

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var .pytest_cache
