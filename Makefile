# ckptweb — `make run` serves the demo, `make test` runs the whole suite.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Extras to install; .ci/run adds "torch" (the PyTorch example's test), pinned to the
# CPU wheel on this machine. The stamp covers both, so a change reinstalls once.
EXTRAS ?= dev
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo '$(EXTRAS)') | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve migrate test test-fast lint format worker bench det-venv azurite

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Determined's real client in a venv of its own (tests/detcompat drive it); idempotent.
DET_VERSION := 0.38.1
DET_VENV := var/det-venv
DET_STAMP := $(DET_VENV)/.installed-determined-$(DET_VERSION)

det-venv: $(DET_STAMP)

$(DET_STAMP):
	@test -x $(DET_VENV)/bin/python || $(PY) -m venv $(DET_VENV)
	$(DET_VENV)/bin/python -m pip install -q --disable-pip-version-check 'determined==$(DET_VERSION)'
	@touch $@

# Azurite (Azure Blob Storage emulator, npm) for the Azure tests; installed once, locally.
AZURITE := var/azurite/node_modules/.bin/azurite-blob
AZURITE_VERSION ?= 3

azurite: $(AZURITE)

$(AZURITE):
	@command -v npm >/dev/null || { echo "make azurite: npm is required"; exit 1; }
	npm install --prefix var/azurite --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)

migrate: install
	$(BIN)/python manage.py migrate --noinput -v0

run: migrate
	$(BIN)/python manage.py apply_master_config
	@$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py load_demo
	@echo ""
	@echo "ckptweb is serving at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo ""
	$(BIN)/gunicorn ckptweb.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 4 \
		--access-logfile - --timeout 300

worker: install
	$(BIN)/celery -A ckptweb worker --beat --loglevel INFO

# Layers (pyproject's import-linter contracts) and no import cycle between modules.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m tests.architecture

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	-@$(MAKE) -s det-venv || echo "make: no Determined client venv; tests/detcompat will skip"
	$(BIN)/python -m pytest

# The development loop: no slow, browser or service tests (make test stays whole for CI).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser and not services"

bench: install
	$(BIN)/python -m bench.run
