"""The declarative attribute map and the Schema built from the definitions.

An attribute (``Attr``) drives request validation (types, defaults,
allow_post/allow_put), which attributes can be filtered and sorted on,
and what is shown.  The API contracts (quantum_ovs/api/definitions: core
and one per extension) declare them; ``build(definitions)`` merges the
enabled ones into a frozen ``Schema``, which is all the application reads:
nothing here is changed at run time.
"""

import copy
import types
from dataclasses import dataclass
from typing import Any, Callable, Optional

from quantum_ovs.api import validators as v


class _NotSet:
    """The 'no default' sentinel; survives deepcopy as itself."""

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __repr__(self):
        return "NOT_SET"


NOT_SET = _NotSet()


@dataclass(frozen=True)
class Attr:
    validate: Callable = None
    allow_post: bool = True
    allow_put: bool = False
    default: Any = NOT_SET
    is_visible: bool = True
    is_filter: bool = True
    is_sort_key: bool = True
    # A filter value arrives as a string; this converts it (defaults to
    # validate).
    convert_filter: Optional[Callable] = None
    # Admin-only to set (enforced through policy "<action>:<attr>" too).
    enforce_policy: bool = False

    @property
    def required(self):
        return self.allow_post and self.default is NOT_SET


def standard(name_len=255):
    """The standard attributes of a resource (id, name, description,
    project, revision, timestamps, tags): a new map on each call."""
    return {
        "id": Attr(v.uuid_str, allow_post=False, is_sort_key=True,
                   convert_filter=v.string(None)),
        "name": Attr(v.string(name_len), allow_put=True, default=""),
        "description": Attr(v.string(255), allow_put=True, default=""),
        "project_id": Attr(v.string(255), default=NOT_SET, is_visible=True,
                           convert_filter=v.string(None)),
        "tenant_id": Attr(v.string(255), default=NOT_SET, is_visible=True,
                          convert_filter=v.string(None)),
        "revision_number": Attr(None, allow_post=False, convert_filter=v.integer()),
        "created_at": Attr(None, allow_post=False, is_filter=False),
        "updated_at": Attr(None, allow_post=False, is_filter=False),
        "tags": Attr(v.list_of(v.tag, unique=True, what="tag"), allow_post=False,
                     is_sort_key=False),
    }


_standard = standard  # (the old name)


def flag(default, put=True, filt=True):
    """A boolean attribute (admin_state_up and the like)."""
    return Attr(v.to_bool, allow_put=put, default=default, is_filter=filt,
                convert_filter=v.to_bool)


# ----------------------------------------------------------------- schema
# What /v2.0/extensions shows as "updated" when an alias names no date.
UPDATED = "2026-11-24T00:00:00-00:00"


class SchemaError(ValueError):
    """The definitions do not fit together (a bug of the code, not of a
    request)."""


def _frozen_map(d):
    return types.MappingProxyType(dict(d))


@dataclass(frozen=True)
class Schema:
    """The API the application serves, built from its definitions.

    ``resources``: collection -> attribute name -> Attr (read-only maps);
    ``singular``: collection -> member name; ``server_defaults``: frozenset
    of (collection, attribute) the server fills in when a request omits
    them; ``actions``: collection -> member action -> HTTP method;
    ``aliases``: the advertised extensions (read-only maps, in order);
    ``policy_rules``: the definitions' policy defaults, in order;
    ``definitions``: the names of the definitions it was built from.
    """

    resources: types.MappingProxyType
    singular: types.MappingProxyType
    server_defaults: frozenset
    actions: types.MappingProxyType
    aliases: tuple
    policy_rules: tuple
    definitions: tuple

    def advertised(self):
        """What /v2.0/extensions lists: new dicts on each call."""
        return [dict(a, links=[]) for a in self.aliases]

    def alias_names(self):
        return [a["alias"] for a in self.aliases]


def _name(d):
    return getattr(d, "__name__", repr(d))


def build(definitions):
    """Merge definitions (modules or objects with ALIASES, COLLECTIONS,
    RESOURCE_ATTRIBUTE_MAP, SERVER_DEFAULTS, ACTIONS, POLICY_RULES,
    REQUIRES; see quantum_ovs/api/definitions) into a frozen Schema.

    Pure: the definitions are read, never changed, and the schema holds
    copies of their attribute maps (two builds share no mutable state).
    Raises SchemaError when they do not fit together: a collection named
    twice with different member names, attributes added to a collection
    no definition declares, an attribute declared twice, a writable
    attribute without a validator, a server default for an attribute that
    is not given on create, a policy rule or an alias declared twice, an
    alias required and not given."""
    definitions = list(definitions)
    singular, resources, owner = {}, {}, {}
    server_defaults, actions, aliases, rules = set(), {}, [], []
    alias_seen, rule_seen = {}, {}
    for d in definitions:
        name = _name(d)
        for plural, member in getattr(d, "COLLECTIONS", {}).items():
            if singular.setdefault(plural, member) != member:
                raise SchemaError(f"{name}: collection {plural} is {singular[plural]}, "
                                  f"not {member}")
            resources.setdefault(plural, {})
        for collection, attrs in getattr(d, "RESOURCE_ATTRIBUTE_MAP", {}).items():
            if collection not in singular:
                raise SchemaError(f"{name}: attributes for {collection}, which no "
                                  "definition before it declares")
            target = resources[collection]
            for attr_name, a in attrs.items():
                if not isinstance(a, Attr):
                    raise SchemaError(f"{name}: {collection}.{attr_name} is not an Attr")
                if attr_name in target:
                    raise SchemaError(f"{name}: {collection}.{attr_name} is declared by "
                                      f"{owner[collection, attr_name]} already")
                if (a.allow_post or a.allow_put) and a.validate is None:
                    raise SchemaError(f"{name}: {collection}.{attr_name} may be given "
                                      "but has no validator")
                target[attr_name] = copy.deepcopy(a)
                owner[collection, attr_name] = name
        for collection, attr_name in getattr(d, "SERVER_DEFAULTS", ()):
            a = resources.get(collection, {}).get(attr_name)
            if a is None or not a.allow_post:
                raise SchemaError(f"{name}: server default for {collection}.{attr_name}, "
                                  "which is not an attribute given on create")
            server_defaults.add((collection, attr_name))
        for collection, acts in getattr(d, "ACTIONS", {}).items():
            if collection not in singular:
                raise SchemaError(f"{name}: actions for unknown collection {collection}")
            for action, method in acts.items():
                if actions.setdefault(collection, {}).setdefault(action, method) != method:
                    raise SchemaError(f"{name}: action {collection}/{action} declared "
                                      "twice")
        for a in d.ALIASES:
            alias = a["alias"]
            if alias in alias_seen:
                raise SchemaError(f"{name}: alias {alias} is declared by "
                                  f"{alias_seen[alias]} already")
            alias_seen[alias] = name
            aliases.append(_frozen_map({
                "alias": alias, "name": a.get("name", alias),
                "description": a.get("description", ""),
                "updated": a.get("updated", UPDATED)}))
        for r in getattr(d, "POLICY_RULES", ()):
            if r.name in rule_seen:
                raise SchemaError(f"{name}: policy rule {r.name} is declared by "
                                  f"{rule_seen[r.name]} already")
            rule_seen[r.name] = name
            rules.append(r)
    for d in definitions:
        missing = [a for a in getattr(d, "REQUIRES", ()) if a not in alias_seen]
        if missing:
            raise SchemaError(f"{_name(d)} requires {missing}, which no definition gives")
    return Schema(
        resources=_frozen_map({c: _frozen_map(m) for c, m in resources.items()}),
        singular=_frozen_map(singular),
        server_defaults=frozenset(server_defaults),
        actions=_frozen_map({c: _frozen_map(m) for c, m in actions.items()}),
        aliases=tuple(aliases),
        policy_rules=tuple(rules),
        definitions=tuple(_name(d) for d in definitions))
