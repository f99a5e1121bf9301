"""The private Open vSwitch of the integration tests: it lives in
quantum_ovs/testing/ovs.py (the demo and the benchmarks use it too)."""

from quantum_ovs.testing.ovs import (  # noqa: F401
    BINARIES,
    CLONE_NEWNET,
    SCHEMA,
    Instance,
    PrivateOVS,
    in_netns,
    kill_pid,
    missing_prerequisites,
    netns_exec,
    rand_name,
    run,
)
