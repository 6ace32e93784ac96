# slf-warehouse: `make demo` runs the refresh on the sample data; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
# Debian packages: HarfBuzz subsetting (WeasyPrint font embedding), poppler (pdftotext/pdftoppm), fonts,
# PostgreSQL (the tests start a throw-away server to run dbt on the postgres target), Chromium
# (a test opens the Data Docs in a headless browser), Redis (the Celery broker of the deployment test),
# Docker's engine, Compose and debootstrap (tests/test_docker_compose.py builds and runs the images).
APT_PACKAGES := libharfbuzz-subset0 poppler-utils fonts-dejavu-core postgresql redis-server chromium \
                docker.io docker-compose debootstrap
KEY_FILE := .slf-pseudonym-key
# Python's bytecode caches (__pycache__/, ignored by git) are written even where the environment turns
# them off: every process the tests start (each `slf`, each sandbox and payroll-reading child, each
# Airflow task) would otherwise compile the package from source again, and pytest would rewrite every
# test module in every worker. Measured here: make test-fast 57 s without the caches, 49 s with them.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup system-deps demo test test-fast lint typecheck run clean help airflow bench

help:
	@echo "make demo   - set up, write the sample data, run the refresh through Airflow into output/"
	@echo "make test   - set up and run the tests"
	@echo "make test-fast - the tests that need no Airflow, dbt, PostgreSQL or browser, on 2 workers (under a minute)"
	@echo "make lint   - ruff (lint and format check) and mypy"

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install -q -r requirements.lock 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import slf_warehouse, airflow.sdk, dbt, great_expectations, weasyprint" 2>/dev/null
	rm -f $(VENV)/.installed-*; touch $@

$(KEY_FILE):
	@$(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@
	@chmod 600 $@
	@echo "generated a local pseudonymisation key in $@ (keep it; payroll pseudonyms depend on it)"

# The Compose file format's JSON schema, as shipped inside the docker-compose 1.29.2 wheel on PyPI
# (no Docker engine here: the tests validate docker-compose.yml against it).
COMPOSE_SCHEMA := $(VENV)/compose_spec.json
$(COMPOSE_SCHEMA): | $(STAMP)
	@rm -rf $(VENV)/.compose-dl && mkdir -p $(VENV)/.compose-dl
	$(BIN)/python -m pip download -q --no-deps docker-compose==1.29.2 -d $(VENV)/.compose-dl 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import zipfile,glob,sys; z=zipfile.ZipFile(glob.glob('$(VENV)/.compose-dl/*.whl')[0]); open(sys.argv[1],'wb').write(z.read('compose/config/compose_spec.json'))" $@
	@rm -rf $(VENV)/.compose-dl

# The dbt manifest, built ahead so Cosmos never runs `dbt ls` while Airflow parses a DAG file.
DBT_MANIFEST := dbt_project/target/manifest.json
$(DBT_MANIFEST): $(STAMP) $(shell find dbt_project/models dbt_project/seeds dbt_project/macros dbt_project/tests dbt_project/snapshots dbt_project/dbt_project.yml -type f 2>/dev/null)
	cd dbt_project && SLF_WAREHOUSE_PATH=/tmp/slf-parse-only.duckdb ../$(BIN)/dbt parse --profiles-dir . --quiet

setup: system-deps $(STAMP) $(KEY_FILE) $(COMPOSE_SCHEMA) $(DBT_MANIFEST)

demo: setup
	rm -rf landing
	$(BIN)/slf sample-data --out landing
	SLF_PSEUDONYM_KEY=$$(cat $(KEY_FILE)) $(BIN)/slf run --landing landing --out output
	@echo
	@echo "Outputs are in $(CURDIR)/output: answers/ (PDF letters), quality/ (Data Docs, quality report)"

test: setup
	$(BIN)/python -m pytest -q

# The loop between edits: tests/conftest.py marks every test that uses an Airflow run, a dbt build, a
# PostgreSQL server or a browser (by the fixtures it uses) and the `slow` ones; this leaves those out.
# Two pytest-xdist workers, one per core here (session fixtures are built once in each worker).
FAST_TESTS := not slow and not airflow and not dbt and not postgres and not browser
FAST_WORKERS ?= 2
test-fast: $(STAMP) $(KEY_FILE) $(COMPOSE_SCHEMA)
	$(BIN)/python -m pytest -q -n $(FAST_WORKERS) --dist worksteal -m "$(FAST_TESTS)"

# Style and types, with the versions pinned in the test extra; the same checks run in pre-commit.
# The whole tree (pyproject.toml's [tool.ruff] excludes dbt's generated folders): a new folder of
# Python code is checked without editing this target. Any finding fails it (ruff and mypy exit 1).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf landing output .airflow

airflow: setup
	SLF_PSEUDONYM_KEY=$$(cat $(KEY_FILE)) $(BIN)/slf airflow

SCALE ?= 1
# ENGINE=postgres: against the server SLF_PG_* name, or a throw-away one on loopback without SLF_PG_HOST
ENGINE ?= duckdb
bench: setup
	SLF_PSEUDONYM_KEY=$$(cat $(KEY_FILE)) $(BIN)/python -m slf_warehouse.benchmark --scale $(SCALE) \
		--engine $(ENGINE) --out output/bench-$(ENGINE)
