# The two commands of the quick start: `make demo` and `make test`.
# Both create .venv, install the package with the extras they need, and install Debian packages
# (mosquitto, postgresql, chromium) with apt-get when they are missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBIAN_DEPS := mosquitto:mosquitto mosquitto_sub:mosquitto-clients initdb:postgresql chromium:chromium
SHARED_LAYOUT_CHECK := ../shared/tools/check_layout.py

.PHONY: demo test lint format bench clean system-deps

$(BIN)/machimori: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,gateway,store,camera]'
	touch $@

system-deps:
	@scripts/ensure-debian-packages.sh $(DEBIAN_DEPS)

demo: $(BIN)/machimori system-deps
	$(BIN)/machimori demo

lint: $(BIN)/machimori
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if [ -f $(SHARED_LAYOUT_CHECK) ]; then $(BIN)/python $(SHARED_LAYOUT_CHECK); fi

test: $(BIN)/machimori system-deps lint
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

format: $(BIN)/machimori
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/machimori system-deps
	for b in outbox gateway river store camera provision; do $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
