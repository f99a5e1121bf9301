"""Launchers the tests, the benchmarks and the demo share (a product part,
as ovsdbapp's venv.py): a private Open vSwitch in its own network namespace
(ovs), a real quantum-ovs-server process (server), a throwaway PostgreSQL
(postgres), and following processes through /proc (procs).  Nothing here
imports the agent, nor the tests; the tests' own fixtures (pytest fixtures,
sample flows, multi-host clusters, Keystone and Tempest) are in
tests/fixtures/."""
