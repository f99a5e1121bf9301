"""The nova network hook: what nova's network API for Quantum does, over
quantum-ovs's REST API (api.py), and the server's notifier that tells nova
when ports go up or down (notifier.py).  The VIF plug tool nova's driver
runs on compute hosts is agent/vif.py (quantum-ovs-vif)."""
