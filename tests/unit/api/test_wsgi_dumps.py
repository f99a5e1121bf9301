"""quantum_ovs.api.wsgi.dumps: response bodies are the JSON value the
standard library would write, whichever encoder writes them."""

import dataclasses
import datetime
import json

import pytest

from hypothesis import given, settings, strategies as st

from quantum_ovs.api import wsgi

@dataclasses.dataclass
class Point:
    x: int
    y: int


_scalars = (st.none() | st.booleans() | st.integers(min_value=-2 ** 63, max_value=2 ** 64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text())
_trees = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(), kids, max_size=5),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(_trees)
def test_same_value_as_the_standard_library(body):
    raw = wsgi.dumps(body)
    assert isinstance(raw, bytes)
    assert json.loads(raw.decode("utf-8")) == json.loads(json.dumps(body))


def test_what_orjson_refuses_is_written_by_the_standard_encoder():
    huge = 2 ** 70  # beyond 64 bits
    assert wsgi.dumps({"n": huge}) == b'{"n":1180591620717411303424}'
    assert wsgi.dumps({1: "a", "b": [huge]}) == b'{"1":"a","b":[1180591620717411303424]}'


def test_what_json_cannot_carry():
    assert wsgi.dumps({"a": float("nan"), "b": [float("inf"), -float("inf")]}) == \
        b'{"a":null,"b":[null,null]}'
    for obj in (datetime.datetime(2026, 12, 5), Point(1, 2), object()):
        with pytest.raises(TypeError):
            wsgi.dumps({"x": obj})


def test_compact_and_utf8():
    assert wsgi.dumps({"name": "r\u00e9seau", "ids": [1, 2], "ok": True, "x": None}) == \
        '{"name":"r\u00e9seau","ids":[1,2],"ok":true,"x":null}'.encode()


def test_json_response_uses_it():
    resp = wsgi.json_response({"port": {"name": "\u00e9"}}, status=201)
    assert resp.status_int == 201 and resp.content_type == "application/json"
    assert json.loads(resp.body) == {"port": {"name": "\u00e9"}}
