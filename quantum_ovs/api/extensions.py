"""What /v2.0/extensions advertises for the core: exactly what is
implemented.  The aliases are declared in quantum_ovs.api.definitions.core
(this module keeps the old names)."""

from quantum_ovs.api.attributes import UPDATED
from quantum_ovs.api.definitions import core

__all__ = ["UPDATED", "builtin"]


def builtin():
    return [{"alias": a["alias"], "name": a["name"], "description": a["description"],
             "updated": a.get("updated", UPDATED), "links": []} for a in core.ALIASES]
