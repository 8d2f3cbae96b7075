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

.PHONY: install run serve migrate test lint format worker bench

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run.py
