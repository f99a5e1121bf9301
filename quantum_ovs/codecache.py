"""Dataclasses made from compiled code kept between runs (issue 17).

Python 3.11 writes each dataclass's methods (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, a frozen one's ``__setattr__`` and
``__delattr__``) as source text and compiles it, every time the class is
created: at every import.  The agent's modules define some 70 of them;
compiling their ~420 methods was about 35 ms of a starting agent's
imports, more than any module of ours.  The source text is the same from
one run to the next, so its compiled form can be kept, as Python keeps a
module's in ``__pycache__``.

:func:`enable` (a process's entry point, before it imports the model)
hands the ``dataclasses`` module an ``exec`` that looks each source text up
in a cache file (``__pycache__/dataclasses.<tag>.marshal`` beside this
package) and compiles only what it does not find; :func:`save` writes what
was compiled back.  The key is the whole source text, so a changed class
compiles afresh and what runs is always what the text says.  Like the
``.pyc`` files it sits with, the file is not written when bytecode is not
(``PYTHONDONTWRITEBYTECODE``, ``-B``) or cannot be (a read-only install),
and a file that does not load is ignored.  Each text is compiled exactly as
dataclasses would compile it (no future flags of this module's).  A process that never calls
:func:`enable` compiles every dataclass itself, as Python does.
"""

from __future__ import annotations

import builtins
import marshal
import os
import sys
import threading

MAX_ENTRIES = 5000  # beyond this, save() keeps only what this process used

_lock = threading.Lock()
_path: str | None = None
_loaded: dict = {}  # source text -> code object, as read from the file
_new: dict = {}  # compiled by this process
_used: set = set()  # of _loaded, the texts this process asked for
_exec = builtins.exec


FORMAT = 2  # (1 compiled with this module's future flags: its files are not read)


def default_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__",
                        f"dataclasses.{FORMAT}.{sys.implementation.cache_tag}.marshal")


def _cached_exec(source, globals=None, locals=None):
    """exec() for the dataclasses module: a source text's code from the
    cache (anything else passes through)."""
    if type(source) is str:
        code = _loaded.get(source)
        if code is not None:
            _used.add(source)
        else:
            code = _new.get(source)
            if code is None:
                # (dont_inherit: not this module's ``from __future__
                # import annotations``, which would turn the methods'
                # annotations into strings)
                code = _new[source] = compile(source, "<string>", "exec", dont_inherit=True)
        source = code
    return _exec(source, globals, locals)


def enable(path: str | None = None) -> bool:
    """Make dataclasses from now on from the cache at ``path`` (by default
    :func:`default_path`); False if this Python's dataclasses module does
    not compile through exec() (nothing is changed then)."""
    global _path
    import dataclasses

    if not hasattr(dataclasses, "_create_fn"):  # (3.11 and 3.12 have it)
        return False
    path = path or default_path()
    with _lock:
        if _path is not None:
            return True
        try:
            with open(path, "rb") as f:
                loaded = marshal.load(f)
        except (OSError, EOFError, ValueError, TypeError):
            loaded = {}
        if isinstance(loaded, dict):
            _loaded.update((k, v) for k, v in loaded.items()
                           if type(k) is str and type(v) is type(_cached_exec.__code__))
        _path = path
        dataclasses.exec = _cached_exec
    return True


def disable() -> None:
    """Give the dataclasses module its own exec() back and forget the
    cache (tests)."""
    global _path
    import dataclasses

    with _lock:
        if getattr(dataclasses, "exec", None) is _cached_exec:
            del dataclasses.exec
        _path = None
        _loaded.clear()
        _new.clear()
        _used.clear()


def stats() -> dict:
    return {"loaded": len(_loaded), "used": len(_used), "compiled": len(_new)}


def save() -> bool:
    """Write the cache if this process compiled anything new; True if it
    was written."""
    with _lock:
        if _path is None or not _new or sys.dont_write_bytecode:
            return False
        keep = dict(_loaded)
        if len(keep) + len(_new) > MAX_ENTRIES:
            keep = {k: v for k, v in _loaded.items() if k in _used}
        keep.update(_new)
        tmp = f"{_path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(_path), exist_ok=True)
            with open(tmp, "wb") as f:
                marshal.dump(keep, f)
            os.replace(tmp, _path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False
        _loaded.update(_new)
        _used.update(_new)
        _new.clear()
        return True
