# The two commands of the README: `make run` (the product, embedded) and `make test` (the whole suite).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test test-bot install services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)
	scripts/ensure-frontend

run: install
	BIN=$(BIN) scripts/run-embedded

services:
	scripts/ensure-services
	scripts/ensure-browser

test: install services
	scripts/run-tests

# only the bot's tests against the real Rasa (installs .venv-rasa and trains the model when needed)
test-bot: install services
	BOT_TESTS=only scripts/run-tests

bench: install services
	$(BIN)/python bench/crm_lookup.py

clean:
	rm -rf $(VENV) var .pytest_cache
