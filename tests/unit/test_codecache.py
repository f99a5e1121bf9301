"""quantum_ovs.codecache: dataclasses made from compiled code kept between
runs (issue 17)."""

import dataclasses
import sys

import pytest

from quantum_ovs import codecache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    codecache.disable()
    path = str(tmp_path / "__pycache__" / "dc.marshal")
    yield path
    codecache.disable()


def make(extra_field=False):
    """A frozen, slotted dataclass made now (its methods compiled or taken
    from the cache)."""
    ns = {"dataclass": dataclasses.dataclass, "field": dataclasses.field}
    src = ("@dataclass(frozen=True, slots=True)\n"
           "class Pair:\n"
           "    a: int\n"
           "    b: str = 'x'\n")
    if extra_field:
        src += "    c: tuple = ()\n"
    exec(src, ns)
    return ns["Pair"]


def behaves(cls, extra_field=False):
    p = cls(1)
    assert p == cls(1, "x") and p != cls(2)
    assert hash(p) == hash(cls(1, "x"))
    assert repr(p) == ("Pair(a=1, b='x', c=())" if extra_field else "Pair(a=1, b='x')")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.a = 3


def test_second_run_takes_the_compiled_methods(cache):
    assert codecache.enable(cache)
    behaves(make())
    first = codecache.stats()
    assert first["compiled"] >= 5 and first["loaded"] == 0  # init, repr, eq, hash, setattr...
    assert codecache.save()
    assert not codecache.save()  # nothing new since

    codecache.disable()  # "the next run"
    assert codecache.enable(cache)
    assert codecache.stats()["loaded"] == first["compiled"]
    cls = make()
    behaves(cls)
    assert codecache.stats()["compiled"] == 0
    assert codecache.stats()["used"] == first["compiled"]


def test_a_changed_class_is_compiled_from_its_own_text(cache):
    codecache.enable(cache)
    make()
    codecache.save()
    codecache.disable()
    codecache.enable(cache)
    cls = make(extra_field=True)
    assert codecache.stats()["compiled"] > 0  # __init__, __repr__, __eq__, __hash__ differ
    behaves(cls, extra_field=True)
    assert cls(1, "x", (2,)) != cls(1, "x")


def test_a_file_that_does_not_load_is_ignored(cache, tmp_path):
    (tmp_path / "__pycache__").mkdir()
    with open(cache, "wb") as f:
        f.write(b"\x00not marshal data")
    assert codecache.enable(cache)
    behaves(make())
    assert codecache.stats()["loaded"] == 0
    assert codecache.save()  # replaced by a good one
    codecache.disable()
    codecache.enable(cache)
    assert codecache.stats()["loaded"] > 0


def test_nothing_written_without_bytecode(cache, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    codecache.enable(cache)
    make()
    assert not codecache.save()
    codecache.disable()
    codecache.enable(cache)
    assert codecache.stats()["loaded"] == 0


def test_disabled_dataclasses_compile_as_python_does(cache):
    codecache.enable(cache)
    codecache.disable()
    assert "exec" not in vars(dataclasses)
    behaves(make())
    assert codecache.stats() == {"loaded": 0, "used": 0, "compiled": 0}


def test_the_methods_are_the_ones_python_makes_annotations_included(cache):
    """(found by review: compiled with this module's ``from __future__
    import annotations``, __init__'s annotations were strings naming
    dataclasses' locals, and typing.get_type_hints raised NameError)"""
    import inspect
    import typing

    codecache.disable()
    plain = make()
    want_sig, want_hints = str(inspect.signature(plain)), typing.get_type_hints(plain.__init__)
    for _run in (1, 2):  # compiled, then from the file
        codecache.enable(cache)
        cls = make()
        assert str(inspect.signature(cls)) == want_sig
        assert typing.get_type_hints(cls.__init__) == want_hints
        codecache.save()
        codecache.disable()
