# The two commands of the quick start: `make demo` and `make test`.
# Both create .venv, install the package with the extras they need, and install Debian packages
# (mosquitto, postgresql, chromium) with apt-get when they are missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEBIAN_DEPS := mosquitto:mosquitto mosquitto_sub:mosquitto-clients initdb:postgresql chromium:chromium ip:iproute2
SHARED_LAYOUT_CHECK := ../shared/tools/check_layout.py
# FIWARE's own Python client, which the NGSI tests run against the store. It pins paho-mqtt and
# pydantic versions the store does not use, so it lives in a virtual environment of its own.
FIWARE_VENV := .venv-fiware
FILIP_VERSION := 0.8.1

.PHONY: demo test test-slow lint format bench fuzz clean system-deps

$(BIN)/machimori: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,gateway,store,camera,bus,tracker]'
	touch $@

$(FIWARE_VENV)/bin/filip-ok:
	$(PYTHON) -m venv $(FIWARE_VENV)
	$(FIWARE_VENV)/bin/pip install --quiet --upgrade pip
	$(FIWARE_VENV)/bin/pip install --quiet filip==$(FILIP_VERSION)
	touch $@

system-deps:
	@scripts/ensure-debian-packages.sh $(DEBIAN_DEPS)

demo: $(BIN)/machimori system-deps
	$(BIN)/machimori demo

lint: $(BIN)/machimori
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if [ -f $(SHARED_LAYOUT_CHECK) ]; then $(BIN)/python $(SHARED_LAYOUT_CHECK); fi

# `make test` leaves out the long scenarios (marked slow: a day of bus riders, children walking to
# school, the whole city under chaos); `make test-slow` runs them, and CI runs both.
test: $(BIN)/machimori $(FIWARE_VENV)/bin/filip-ok system-deps lint
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m 'not slow'

test-slow: $(BIN)/machimori $(FIWARE_VENV)/bin/filip-ok system-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m slow

format: $(BIN)/machimori
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/machimori system-deps
	for b in outbox gateway river store ngsi camera provision bus tracker routine; do $(BIN)/python bench/$$b.py || exit 1; done

fuzz: $(BIN)/machimori
	$(BIN)/pip install --quiet -e '.[fuzz]'
	$(BIN)/python bench/fuzz.py --seconds 60

clean:
	rm -rf $(VENV) $(FIWARE_VENV) .pytest_cache .ruff_cache .hypothesis
