VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: openapi setup test test-unit test-functional test-integration demo bench bench-compare pep8 genconfig genpolicy clean

setup:
	@bash tools/setup.sh

test: setup
	@bash tools/run-tests.sh tests

test-unit: setup
	@bash tools/run-tests.sh tests/unit

test-functional: setup
	@bash tools/run-tests.sh tests/functional

test-integration: setup
	@bash tools/run-tests.sh tests/integration

demo: setup
	@$(PY) tools/demo.py $(ARGS)

# bench/ovn_routers.py needs Debian's ovn-central and ovn-host (see its
# docstring): run it by hand, like make bench-compare.
bench: setup
	@for b in bench/*.py; do case $$b in */__init__.py|*/compare.py|*/ovn_routers.py) continue;; esac; \
		echo "== $$b"; $(PY) $$b --quick || exit 1; done

# The benchmarks at two revisions side by side: make bench-compare BASE=033c174 HEAD_REV=HEAD
BASE ?= 033c174
HEAD_REV ?= HEAD
bench-compare: setup
	@$(PY) bench/compare.py --base $(BASE) --head $(HEAD_REV) $(ARGS)

pep8: setup
	@$(VENV)/bin/ruff check quantum_ovs agent tests bench tools
	@$(VENV)/bin/lint-imports --no-cache

genconfig: setup
	@$(VENV)/bin/oslo-config-generator --namespace quantum_ovs --output-file etc/quantum-ovs.conf.sample
	@$(VENV)/bin/oslo-config-generator --namespace quantum_ovs.agent --output-file etc/quantum-ovs-agent.ini.sample

# doc/api/networking-v2.json and networking-v1.json from the code
# (tests/unit/api/test_openapi.py fails when they are stale).
openapi: setup
	@$(PY) -m quantum_ovs.cmd.openapi --output-dir doc/api

genpolicy: setup
	@$(VENV)/bin/oslopolicy-sample-generator --namespace quantum_ovs --output-file etc/policy.yaml.sample

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
