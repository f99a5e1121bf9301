"""A small policy engine reading oslo.policy's rule language.

Rules are strings such as ``"rule:admin_or_owner or rule:shared"``,
``"role:admin"``, ``"project_id:%(project_id)s"``,
``"field:networks:shared=True"``, ``"@"`` (always) and ``"!"`` (never),
combined with ``and``, ``or``, ``not`` and parentheses.  They are
compiled once into closures: checking a rule on a listed object costs a
few function calls.

The defaults below are Neutron's; an operator overrides any of them in
the JSON (or YAML) policy file.
"""

import json
import os
import re

from quantum_ovs import exceptions

DEFAULT_RULES = {
    "context_is_admin": "role:admin",
    "owner": "project_id:%(project_id)s",
    "admin_or_owner": "rule:context_is_admin or rule:owner",
    "admin_or_network_owner": "rule:context_is_admin or "
                              "project_id:%(network:project_id)s",
    "admin_owner_or_network_owner": "rule:owner or rule:admin_or_network_owner",
    "admin_only": "rule:context_is_admin",
    "regular_user": "",
    "shared": "field:networks:shared=True",
    "default": "rule:admin_or_owner",

    "create_network": "",
    "get_network": "rule:admin_or_owner or rule:shared",
    "create_network:shared": "rule:admin_only",
    "update_network": "rule:admin_or_owner",
    "update_network:shared": "rule:admin_only",
    "delete_network": "rule:admin_or_owner",

    "create_subnet": "rule:admin_or_network_owner",
    "get_subnet": "rule:admin_or_owner or rule:shared",
    "update_subnet": "rule:admin_or_network_owner",
    "delete_subnet": "rule:admin_or_network_owner",

    "create_port": "",
    "create_port:mac_address": "rule:admin_or_network_owner",
    "create_port:fixed_ips": "rule:admin_or_network_owner or rule:shared",
    "get_port": "rule:admin_owner_or_network_owner",
    "update_port": "rule:admin_or_owner",
    "update_port:mac_address": "rule:admin_only",
    "update_port:fixed_ips": "rule:admin_or_network_owner",
    "delete_port": "rule:admin_owner_or_network_owner",
}



def _tokenize(text):
    """Split on white space; leading '(' and unbalanced trailing ')' of a
    chunk are tokens of their own ('%(project_id)s' keeps its parens)."""
    tokens = []
    for chunk in text.split():
        while chunk.startswith("(") and not chunk.startswith("(%"):
            tokens.append("(")
            chunk = chunk[1:]
        closing = 0
        while chunk.endswith(")") and chunk.count(")") > chunk.count("("):
            closing += 1
            chunk = chunk[:-1]
        if chunk:
            tokens.append(chunk)
        tokens.extend([")"] * closing)
    return tokens


class Enforcer:
    def __init__(self, rules=None, path=None, defaults=None):
        raw = dict(DEFAULT_RULES)
        raw.update(defaults or {})
        if path and os.path.exists(path):
            with open(path) as f:
                text = f.read()
            if path.endswith((".yaml", ".yml")):
                import yaml
                raw.update(yaml.safe_load(text) or {})
            else:
                raw.update(json.loads(text or "{}"))
        if rules:
            raw.update(rules)
        self.raw = raw
        self._compiled = {}
        for name in raw:
            self._rule(name)

    # --------------------------------------------------------- compiling
    def _rule(self, name, _stack=()):
        if name in self._compiled:
            return self._compiled[name]
        if name not in self.raw:
            raise KeyError(name)
        if name in _stack:
            raise ValueError(f"policy rule {name} refers to itself")
        # Late-bound so that rules may refer to each other in any order.
        self._compiled[name] = None
        fn = self._parse(self.raw[name], _stack + (name,))
        self._compiled[name] = fn
        return fn

    def _parse(self, text, stack):
        if isinstance(text, list):  # the old list-of-lists syntax
            text = " or ".join("(" + " and ".join(x) + ")" for x in text) or "@"
        tokens = _tokenize(text)
        if not tokens:
            return lambda ctx, target: True
        pos = [0]

        def peek():
            return tokens[pos[0]] if pos[0] < len(tokens) else None

        def take():
            if pos[0] >= len(tokens):
                raise ValueError(f"bad policy rule {text!r}: unexpected end")
            pos[0] += 1
            return tokens[pos[0] - 1]

        def expr_or():
            parts = [expr_and()]
            while peek() == "or":
                take()
                parts.append(expr_and())
            return parts[0] if len(parts) == 1 else (lambda c, t: any(p(c, t) for p in parts))

        def expr_and():
            parts = [expr_not()]
            while peek() == "and":
                take()
                parts.append(expr_not())
            return parts[0] if len(parts) == 1 else (lambda c, t: all(p(c, t) for p in parts))

        def expr_not():
            if peek() == "not":
                take()
                inner = expr_not()
                return lambda c, t: not inner(c, t)
            return atom()

        def atom():
            tok = take()
            if tok in ("and", "or", ")"):
                raise ValueError(f"bad policy rule {text!r}: unexpected {tok!r}")
            if tok == "(":
                inner = expr_or()
                if take() != ")":
                    raise ValueError(f"bad policy rule {text!r}")
                return inner
            return self._check(tok, stack)

        fn = expr_or()
        if pos[0] != len(tokens):
            raise ValueError(f"bad policy rule {text!r}")
        return fn

    def _check(self, tok, stack):
        if tok == "@":
            return lambda c, t: True
        if tok == "!":
            return lambda c, t: False
        kind, _, arg = tok.partition(":")
        if kind == "rule":
            compiled = self._compiled

            def rule_check(c, t, arg=arg):
                fn = compiled.get(arg)
                if fn is None:
                    if arg not in self.raw:
                        return False
                    fn = self._rule(arg, stack)
                return fn(c, t)
            if arg in stack:
                raise ValueError(f"policy rule {arg} refers to itself")
            if arg in self.raw:
                self._rule(arg, stack)
            return rule_check
        if kind == "role":
            role = arg.lower()
            return lambda c, t: role in c.roles
        if kind == "field":
            # field:networks:shared=True
            _resource, _, rest = arg.partition(":")
            fname, _, want = rest.partition("=")
            want_val = {"True": True, "False": False}.get(want, want)
            return lambda c, t: t.get(fname) == want_val
        if not arg and tok not in ("@", "!"):
            raise ValueError(f"bad policy check {tok!r}")
        if kind in ("http", "https"):
            return lambda c, t: False
        # <context attribute>:<value or %(target attribute)s>
        attr = kind
        m = re.fullmatch(r"%\((.+)\)s", arg)
        if m:
            key = m.group(1)
            if key == "tenant_id":
                key = "project_id"
            def match(c, t, key=key):
                mine = _ctx_value(c, attr)
                if mine is None:
                    return False
                theirs = t.get(key, t.get("tenant_id") if key == "project_id" else None)
                return str(theirs) == str(mine)
            return match
        return lambda c, t: str(_ctx_value(c, attr)) == arg

    # --------------------------------------------------------- checking
    def check(self, action, ctx, target):
        fn = self._compiled.get(action) or self._compiled.get("default")
        return bool(fn(ctx, target))

    def has(self, action):
        return action in self._compiled

    def enforce(self, action, ctx, target):
        if not self.check(action, ctx, target):
            raise exceptions.PolicyNotAuthorized(action=action)


def _ctx_value(ctx, attr):
    if attr in ("tenant_id", "project_id", "tenant"):
        return ctx.project_id
    if attr == "user_id":
        return ctx.user_id
    if attr == "is_admin":
        return ctx.is_admin
    return getattr(ctx, attr, None)
