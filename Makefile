# Two commands a newcomer needs:  `make demo` (the main job)  and  `make test` (everything CI runs).
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_NO_PROGRESS := 1

.PHONY: help uv sync mongod browser lint format test test-fast test-lowest demo viewer bench clean

help:
	@echo "make demo   - start a local mongod, create demo sessions, serve the Session Viewer"
	@echo "make test   - install uv, dependencies and mongod as needed; run ruff and the whole test suite"
	@echo "make bench  - run the benchmarks in benchmarks/ (not part of make test)"

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: uv
	$(UV) sync --frozen --all-extras

mongod: sync
	$(UV) run python -m mongodb_session_manager.embedded install

browser:
	@bash scripts/install-browser.sh

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: sync
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

test: sync mongod browser lint
	$(UV) run pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory test-lowest

# The unit and integration tests again, on the lowest versions pyproject.toml allows for every direct
# dependency, in their own environment (.venv-lowest): a floor that is not tested is not a floor.
LOWEST_VENV := .venv-lowest
test-lowest: uv mongod
	$(UV) venv --quiet --allow-existing $(LOWEST_VENV)
	$(UV) pip install --quiet --python $(LOWEST_VENV)/bin/python --resolution lowest-direct \
		-e ".[aws,viewer,tools]" --group dev
	$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit tests/integration

test-fast: sync mongod
	$(UV) run pytest -q -x tests/unit tests/integration

# With MONGODB_CONNECTION_STRING set, the demo and the viewer use that server: nothing is installed.
LOCAL_MONGOD := $(if $(MONGODB_CONNECTION_STRING),,mongod)

demo: sync $(LOCAL_MONGOD)
	$(UV) run mongodb-session-manager demo

viewer: sync $(LOCAL_MONGOD)
	$(UV) run mongodb-session-manager viewer

bench: sync mongod
	$(UV) run python benchmarks/run_all.py

clean:
	rm -rf .pytest_cache .ruff_cache dist build $(LOWEST_VENV)
