VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: openapi setup test test-unit test-functional test-integration test-nova demo bench bench-compare pep8 genconfig genpolicy clean

setup:
	@bash tools/setup.sh

# Two workers (pytest-xdist), a module at a time each: 36 -> under 30 minutes
# here.  TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup
	@bash tools/run-tests.sh -n $(TEST_WORKERS) --dist loadfile tests

test-unit: setup
	@bash tools/run-tests.sh tests/unit

test-functional: setup
	@bash tools/run-tests.sh tests/functional

test-integration: setup
	@bash tools/run-tests.sh tests/integration

# OpenStack's own nova on quantum-ovs (tests/integration/test_real_nova.py):
# RabbitMQ, Keystone, placement, nova 34 and two compute hosts; about 15
# minutes here, so not part of `make test` (without QOVS_NOVA_TESTS=1 the
# module skips).
test-nova: setup
	@bash tools/setup-nova.sh
	@QOVS_NOVA_TESTS=1 bash tools/run-tests.sh tests/integration/test_real_nova.py $(ARGS)

demo: setup
	@$(PY) tools/demo.py $(ARGS)

# bench/ovn_routers.py needs Debian's ovn-central and ovn-host, and
# bench/nova_boot.py the nova stack of make test-nova (see their
# docstrings): run them by hand, like make bench-compare.
bench: setup
	@for b in bench/*.py; do case $$b in */__init__.py|*/compare.py|*/ovn_routers.py|*/nova_boot.py) continue;; esac; \
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
