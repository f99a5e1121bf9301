"""The nova network hook: what nova's network API for Quantum does, over
quantum-ovs's REST API (api.py); the VIF plug tool (vif.py); and the
server's notifier that tells nova when ports go up or down (notifier.py)."""
