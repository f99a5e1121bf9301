"""A fast parser for the JSON-RPC stream from ovsdb-server.

The ``ovs`` library reads OVSDB's JSON-RPC messages with ``ovs.json.Parser``:
a C parser when the package was built with its extension (``ovs._json``),
otherwise a pure-Python one that runs a state machine per character.  The
wheel pip installs has no extension, and the pure-Python parser is most of
an agent's first OVSDB sync (a host with 1,000 interfaces: a ~430 KB
initial update, ~0.2 s of lexing before the IDL sees a row).

:class:`StreamParser` has the interface ``ovs.jsonrpc`` uses (``feed``,
``is_done``, ``finish``) but only finds where a message ends: a regular
expression steps over whole strings and stops at brackets, counting depth.
The message is then decoded in one call to the standard library's C decoder.
:func:`install` makes ``ovs.jsonrpc``'s connections use it when the C
parser is missing; ``ovs.json`` itself is left as it is.
"""

from __future__ import annotations

import json
import re

import ovs.json
import ovs.jsonrpc

# A complete string (escapes stepped over), or a quote that starts a string
# not complete in the text so far, or a bracket.  Everything else between
# tokens (numbers, literals, commas, colons, blanks) is skipped.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|["{}\[\]]', re.S)
_BLANK = " \t\r\n"


def _reject_constant(name):
    raise ValueError(f"invalid literal {name}")


_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


class StreamParser:
    """One JSON-RPC message (a JSON object or array) from a stream."""

    def __init__(self):
        self._parts = []  # text of the message so far, up to _carry
        self._carry = ""  # an unfinished string at the end of the input
        self._depth = 0
        self.done = False
        self._result = None  # the value, or an error message (str)

    def is_done(self) -> bool:
        return self.done

    def _fail(self, message: str) -> None:
        self.done = True
        self._result = "syntax error: " + message

    def feed(self, s: str) -> int:
        """Take text; return how much of ``s`` belongs to this message."""
        if self.done:
            return 0
        carry = self._carry
        text = carry + s if carry else s
        offset = len(carry)
        depth = self._depth
        for m in _TOKEN.finditer(text):
            start = m.start()
            c = text[start]
            if c == '"':
                if depth == 0:
                    self._fail("a message must be a JSON object or array")
                    return len(s)
                if m.end() - start == 1:  # the string goes on in the next input
                    self._parts.append(text[:start])
                    self._carry = text[start:]
                    self._depth = depth
                    return len(s)
            elif c in "{[":
                if depth == 0:
                    if text[:start].strip(_BLANK):
                        self._fail("a message must be a JSON object or array")
                        return len(s)
                depth += 1
            else:
                depth -= 1
                if depth <= 0:
                    if depth < 0:
                        self._fail(f"unexpected {c!r}")
                        return len(s)
                    end = m.end()
                    self._parts.append(text[:end])
                    self._finish_message()
                    return end - offset
        if depth == 0 and text.strip(_BLANK):
            self._fail("a message must be a JSON object or array")
            return len(s)
        self._parts.append(text)
        self._carry = ""
        self._depth = depth
        return len(s)

    def _finish_message(self) -> None:
        self.done = True
        text = "".join(self._parts)
        self._parts = []
        try:
            self._result = _decode(text)
        except ValueError as e:
            self._result = f"syntax error: {e}"

    def finish(self):
        """The message's value, or a string saying what is wrong with it
        (as ``ovs.json.Parser.finish``)."""
        if not self.done:
            return "syntax error: unexpected end of input"
        return self._result


class _Connection(ovs.jsonrpc.Connection):
    """``ovs.jsonrpc.Connection`` reading with a :class:`StreamParser`:
    the library drops its parser after each message (sets ``parser`` to
    None) and makes a new one when it finds none; here a new one is there
    at once, so the library never makes its own."""

    @property
    def parser(self):
        return self._stream_parser

    @parser.setter
    def parser(self, value):
        self._stream_parser = StreamParser() if value is None else value


def install() -> bool:
    """Make ``ovs.jsonrpc`` (its sessions, hence the IDL) read with
    :class:`StreamParser` unless the library's C parser is there.  True if
    installed."""
    if ovs.json.PARSER == ovs.json.PARSER_C:
        return False
    ovs.jsonrpc.Connection = _Connection
    return True
