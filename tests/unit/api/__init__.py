"""Unit tests of quantum_ovs.api (the HTTP layer without a server)."""
