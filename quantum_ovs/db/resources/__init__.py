"""The core collections: networks, subnets and ports (see db/resource.py)."""
