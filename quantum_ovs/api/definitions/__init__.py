"""The API contracts, apart from their implementation.

One module per contract (``core`` for networks, subnets and ports; one per
extension), pure data plus validators, in the shape of neutron-lib's
``api/definitions``.  A module may import only quantum_ovs.api.attributes,
quantum_ovs.api.validators, quantum_ovs.exceptions, quantum_ovs.constants,
quantum_ovs.policy_rules and the standard library (an import contract in
.importlinter checks it).  Its names (all optional but ``ALIASES``):

- ``ALIASES``: [{"alias", "name", "description"[, "updated"]}], what
  /v2.0/extensions advertises;
- ``COLLECTIONS``: {plural: singular} of the collections it adds;
- ``RESOURCE_ATTRIBUTE_MAP``: {collection: {attribute: Attr}}, the
  attributes it adds to its own or to existing collections;
- ``SERVER_DEFAULTS``: {(collection, attribute)} the server fills in when
  a request omits them;
- ``ACTIONS``: {collection: {action: HTTP method}}, member actions;
- ``POLICY_RULES``: oslo.policy defaults for its resources;
- ``REQUIRES``: aliases it depends on.

``quantum_ovs.api.attributes.build(definitions)`` merges the enabled ones
into the frozen Schema the application serves; the implementation module
of each extension (quantum_ovs/extensions/<name>.py) names its definition
as ``DEFINITION``.
"""
