"""Our v2.0 description against the community one
(../shared/reference/openstack-network-v2.openapi.yaml, generated from
Neutron): every path, method and attribute we serve exists there with a
compatible type; where we deliberately differ, doc/api/known-differences.md
says so and why (and lists nothing that is no longer a difference)."""

import json
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
REFERENCE = os.environ.get("QOVS_REFERENCE_OPENAPI", os.path.join(
    os.path.dirname(ROOT), "shared", "reference", "openstack-network-v2.openapi.yaml"))
if not os.path.exists(REFERENCE):
    REFERENCE = "/work/shared/reference/openstack-network-v2.openapi.yaml"
KNOWN = os.path.join(ROOT, "doc", "api", "known-differences.md")
# Ours only, not part of the Networking API proper.
OWN_PATHS = {"/", "/openapi.json", "/v2.0", "/v2.0/"}
METHODS = ("get", "put", "post", "delete")


def _norm(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


class Doc:
    def __init__(self, doc):
        self.doc = doc

    def resolve(self, s):
        seen = 0
        while isinstance(s, dict) and "$ref" in s and seen < 20:
            node = self.doc
            for part in s["$ref"].lstrip("#/").split("/"):
                node = node[part]
            s = node
            seen += 1
        return s or {}

    def body(self, op, where, code=None):
        if where == "request":
            c = (op.get("requestBody") or {}).get("content", {})
        else:
            c = (self.resolve(op.get("responses", {}).get(code, {})) or {}).get("content", {})
        return self.resolve(c.get("application/json", {}).get("schema", {}))

    def member(self, s, key):
        """The object under ``key`` of a body schema (through oneOf/anyOf)."""
        s = self.resolve(s)
        for alt in [s] + list(s.get("oneOf", [])) + list(s.get("anyOf", [])):
            alt = self.resolve(alt)
            inner = alt.get("properties", {}).get(key)
            if inner is not None:
                return self.resolve(inner)
        return None

    def types(self, s, depth=0):
        """The JSON types a schema admits (None: any)."""
        s = self.resolve(s)
        if not isinstance(s, dict) or depth > 5:
            return None
        out = set()
        t = s.get("type")
        if t is not None:
            out |= set([t] if isinstance(t, str) else t)
        if "enum" in s and t is None:
            for e in s["enum"]:
                out.add({bool: "boolean", int: "integer", float: "number", str: "string",
                         type(None): "null"}.get(type(e), "object"))
        for k in ("anyOf", "oneOf"):
            for alt in s.get(k, ()):
                sub = self.types(alt, depth + 1)
                if sub is None:
                    return None
                out |= sub
        if "const" in s:
            return None
        return out or None


def _compatible(ours, theirs, strict):
    """(compatible, nullable-only-ours)."""
    if ours is None or theirs is None:
        return True, False
    theirs = set(theirs) | ({"integer"} if "number" in theirs else set())
    null = "null" in ours and "null" not in theirs
    base = ours - {"null"}
    if not base:
        return True, null
    ok = base <= theirs if strict else bool(base & theirs)
    return ok, null


def differences(ours, theirs):
    """Sorted lines ``kind target`` where ours is not in the reference:
    ``missing-path P``, ``missing-method M P``, and per resource attribute
    (compared with what the reference says of it in any operation)
    ``missing-attribute r.a``, ``type r.a``, ``nullable r.a`` (we show null,
    the reference says it is never null)."""
    o, t = Doc(ours), Doc(theirs)
    tpaths = {_norm(p): item for p, item in theirs["paths"].items()}
    out = set()
    mine, refs = {}, {}  # (where, key) -> attr -> [schemas]
    for path, item in ours["paths"].items():
        if path in OWN_PATHS or path.startswith("/v1."):
            continue
        ops = {m: op for m, op in item.items() if m in METHODS}
        if any(op.get("deprecated") for op in ops.values()):
            continue  # another spelling of a canonical path
        titem = tpaths.get(_norm(path))
        if titem is None:
            out.add(f"missing-path {path}")
            continue
        for m, op in ops.items():
            top = titem.get(m)
            if top is None:
                out.add(f"missing-method {m.upper()} {path}")
                continue
            for where in ("request", "response"):
                if where == "response":
                    pairs = [(o.body(op, where, c), t.body(top, where, c))
                             for c in op.get("responses", {}) if c.startswith("2")]
                    pairs += [(ob, t.body(top, where, c)) for ob, _ in pairs[:1]
                              for c in top.get("responses", {}) if c.startswith("2")]
                else:
                    pairs = [(o.body(op, where), t.body(top, where))]
                for ob, tb in pairs:
                    alts = [ob] + [o.resolve(a) for a in ob.get("oneOf", []) +
                                   ob.get("anyOf", [])]
                    keys = {k for a in alts for k in a.get("properties", {})}
                    for key in keys:
                        ores, tres = o.member(ob, key), t.member(tb, key)
                        if ores is None or ores.get("type") != "object":
                            continue
                        for attr, sch in ores.get("properties", {}).items():
                            mine.setdefault((where, key), {}).setdefault(attr, []).append(sch)
                        if tres is not None:
                            for attr, sch in tres.get("properties", {}).items():
                                refs.setdefault((where, key), {}).setdefault(
                                    attr, []).append((t, sch))
    for (where, key), attrs in mine.items():
        theirs_ = refs.get((where, key)) or refs.get(
            ("response" if where == "request" else "request", key))
        if not theirs_:
            continue  # the reference describes no such body
        for attr, schemas in attrs.items():
            label = f"{key}.{attr}"
            tschemas = theirs_.get(attr)
            if tschemas is None:
                out.add(f"missing-attribute {label}")
                continue
            ttypes = set()
            for doc, sch in tschemas:
                ty = doc.types(sch)
                if ty is None:
                    ttypes = None
                    break
                ttypes |= ty
            for sch in schemas:
                ok, null = _compatible(o.types(sch), ttypes, strict=where == "response")
                if not ok:
                    out.add(f"type {label}")
                elif null and where == "response":
                    out.add(f"nullable {label}")
    return sorted(out)


def known():
    """The lines of the known-differences file's list (``- `kind target` ...``)."""
    with open(KNOWN) as f:
        return sorted(m.group(1) for m in re.finditer(r"^- `([^`]+)`", f.read(), re.M))


@pytest.fixture(scope="module")
def both():
    if not os.path.exists(REFERENCE):
        pytest.skip(f"no reference document at {REFERENCE}")
    with open(os.path.join(ROOT, "doc", "api", "networking-v2.json")) as f:
        ours = json.load(f)
    with open(REFERENCE) as f:
        theirs = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return ours, theirs


def test_what_we_serve_is_in_the_reference_or_a_known_difference(both):
    found = differences(*both)
    listed = known()
    unexplained = [d for d in found if d not in listed]
    assert not unexplained, ("differences from the reference not in "
                             "doc/api/known-differences.md:\n" + "\n".join(unexplained))


def test_known_differences_are_still_differences(both):
    found = set(differences(*both))
    stale = [d for d in known() if d not in found]
    assert not stale, "no longer differences (remove them):\n" + "\n".join(stale)


def test_the_diff_finds_a_difference(both):
    ours, theirs = both
    ours = json.loads(json.dumps(ours))
    props = ours["components"]["schemas"]["Network"]["properties"]
    props["admin_state_up"] = {"type": "object"}
    props["no_such_attribute"] = {"type": "string"}
    ours["paths"]["/v2.0/no-such-things"] = {"get": {"responses": {}}}
    found = differences(ours, theirs)
    assert "type network.admin_state_up" in found
    assert "missing-attribute network.no_such_attribute" in found
    assert "missing-path /v2.0/no-such-things" in found
