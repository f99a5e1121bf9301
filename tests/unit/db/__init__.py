"""Unit tests of quantum_ovs.db (storage without a server)."""
