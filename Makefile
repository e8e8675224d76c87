# Two commands for a plain machine (no ROS install needed):
#   make demo   - the whole mission end to end on a generated dataset, results in results/demo
#   make test   - lint and every test of the workspace, launch files included
# Both create the local environment .venv on first use (tools/setup_env.sh, idempotent).

VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= results/demo
export K2MUSE_VENV := $(abspath $(VENV))

.PHONY: env demo test lint bench clean

env:
	@bash tools/setup_env.sh

demo: env
	$(VENV)/bin/exo-demo --output $(DEMO_OUT)

lint: env
	$(VENV)/bin/ruff check src bench tools launch docker

# The tests run in the colcon overlay of the workspace (tools/in_overlay.sh), so the launch
# files and the launch tests run for real; without a launch stack those skip and say why.
test: lint
	@bash tools/in_overlay.sh $(PY) -m pytest

bench: env
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build install log results
