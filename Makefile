# The two set-up commands of the README: `make quickstart` and `make test`.
# Each creates the local virtualenv (.venv) on first use and installs what it needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-bench
FEAST_VENV  := .venv-feast
FEAST_STAMP := $(FEAST_VENV)/.installed-feast
FEAST_SPARK_VENV  := .venv-feast-spark
FEAST_SPARK_STAMP := $(FEAST_SPARK_VENV)/.installed

.PHONY: quickstart test lint typecheck unit install bench bench-spark clean

# pip is quiet (its log would bury the quickstart's output), so each step says what it does.
$(STAMP): pyproject.toml
	@echo "==> Creating $(VENV) and installing featurestore with its dev, postgres, redis and spark extras (about 3 minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,redis,spark]'
	touch $(STAMP)
	@echo "==> Installed into $(VENV)."

install: $(STAMP)

## Generate a small dataset, apply the example repo and build a training frame (no server needed).
quickstart: $(STAMP)
	@echo "==> Generating the example data (XS: 100 drivers, 100 customers, 7 days ending now) into repo/data..."
	$(BIN)/python repo/generate_data.py --size XS
	@echo "==> Registering the definitions of repo/*.py (featurestore apply)..."
	$(BIN)/featurestore --repo repo apply
	@echo "==> Building a training frame, copying the latest values and trip aggregates online and looking some up..."
	$(BIN)/python repo/quickstart.py

## Lint, type-check and run every test, including the PostgreSQL ones.
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check featurestore api

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest --durations=20

# Our engine runs in .venv-bench (DuckDB, and Spark for --engine spark); Feast 0.67 (its DuckDB offline store pins duckdb 1.x) in
# .venv-feast. Both are driven by one bench run.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e '.[bench,spark]'
	touch $(BENCH_STAMP)

$(FEAST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/pip install --quiet -e '.[bench,feast]'
	touch $(FEAST_STAMP)

# Feast 0.67 with its Spark offline store on pyspark 4.1.1 (our Spark engine's version), for
# `bench/historical.py --engine spark --compare feast`; not part of `make bench` nor of CI.
$(FEAST_SPARK_STAMP): pyproject.toml
	$(PYTHON) -m venv $(FEAST_SPARK_VENV)
	$(FEAST_SPARK_VENV)/bin/pip install --quiet --upgrade pip
	$(FEAST_SPARK_VENV)/bin/pip install --quiet -e '.[bench,feast-spark]'
	touch $(FEAST_SPARK_STAMP)

## Historical retrieval on Spark against Feast's Spark offline store (S), then L alone; see
## bench/README.md (needs Java 17; about 10 minutes on 2 idle cores).
bench-spark: $(BENCH_STAMP) $(FEAST_SPARK_STAMP)
	$(BENCH_VENV)/bin/python bench/historical.py --engine spark --size S --compare feast --feast-python $(FEAST_SPARK_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/historical.py --engine spark --size L

## Benchmarks against Feast: historical retrieval (L, no TTL), materialization (L), online lookups
## through the SDK and through the REST services (S), statistics (L, against pandas: Feast has
## none); see bench/README.md.
bench: $(BENCH_STAMP) $(FEAST_STAMP)
	$(BENCH_VENV)/bin/python bench/historical.py --size L --compare feast --feast-python $(FEAST_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/historical.py --no-ttl --compare feast --feast-python $(FEAST_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/historical.py --no-ttl --size L
	$(BENCH_VENV)/bin/python bench/materialize.py --size L --compare feast --feast-python $(FEAST_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/online.py --compare feast --feast-python $(FEAST_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/serving.py --compare feast --feast-python $(FEAST_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/access_overhead.py --size S --rounds 5 --seconds 8
	$(BENCH_VENV)/bin/python bench/stats.py --size L --facade

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(FEAST_VENV) $(FEAST_SPARK_VENV) repo/data .pytest_cache .mypy_cache .ruff_cache
