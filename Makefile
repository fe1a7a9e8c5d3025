# The two quick-start commands, as root on Debian 12: `make run` and `make test`.
# Both provision what is missing (CRIU, the virtual environment, pycriu) and are quick when
# everything is already there.

VENV ?= .venv
export PYTHON ?= python3
ARGS ?=

.PHONY: setup test-setup run test clean

setup:
	scripts/setup-venv $(VENV)
	scripts/install-criu --venv $(VENV)

# What only the tests need: headless chromium for the HTML report's test.
test-setup: setup
	scripts/install-test-deps

run: setup
	$(VENV)/bin/criu-harness run $(ARGS)

test: test-setup
	$(VENV)/bin/python -m pytest $(ARGS)

# Remove what the harness itself made in this checkout (never CRIU under /usr/local).
clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
