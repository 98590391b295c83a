# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# Links in SMS and WeChat messages start with PUBLIC_URL: by default where `make run` serves.
PUBLIC_URL ?= http://$(HOST):$(PORT)
export FLASK_APP := wsgi

.PHONY: run test lint install translations messages migrate worker scheduler clean

$(BIN)/.installed: requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

install: $(BIN)/.installed

# Compiled catalogues (.mo) are build output, made from the .po files each time.
translations: install
	@$(BIN)/pybabel compile --statistics -d ticketing/translations 2>&1 | grep -v '^compiling' || true

# After adding UI strings: extract them and merge into the catalogues, then translate
# the new entries in ticketing/translations/*/LC_MESSAGES/messages.po.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o ticketing/translations/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete -i ticketing/translations/messages.pot -d ticketing/translations

migrate: install
	$(BIN)/flask db upgrade

run: translations migrate
	PUBLIC_URL=$(PUBLIC_URL) $(BIN)/flask demo load --url $(patsubst %/,%,$(PUBLIC_URL))/
	@echo "Minhu is serving at http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	PUBLIC_URL=$(PUBLIC_URL) $(BIN)/flask serve --host $(HOST) --port $(PORT)

# Production processes (with REDIS_URL set): as many workers as you like, one scheduler.
worker: translations migrate
	$(BIN)/flask rq worker

scheduler: translations migrate
	$(BIN)/flask scheduler run

# ruff, then mypy (both configured in pyproject.toml), then the dependency rules of
# docs/architecture.md (import-linter; contracts in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache

# Python's bytecode and pytest's assertion-rewritten modules are cached in
# .pytest_cache/pycache even where the environment sets PYTHONDONTWRITEBYTECODE:
# compiling them anew made collecting the suite take 10 s instead of 2.5 s, each pass.
test: translations
	env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.pytest_cache/pycache \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
