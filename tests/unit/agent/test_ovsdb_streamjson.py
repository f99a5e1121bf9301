"""agent/ovsdb/streamjson.py: the OVSDB stream parser reads exactly what
the ovs library's own parser reads, however the stream is cut."""

import json
import types

import ovs.json
import ovs.jsonrpc

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.ovsdb import streamjson

# Strings full of what a scanner could trip on: quotes, backslashes,
# brackets, control characters (escaped by the encoder), non-ASCII.
_text = st.text(alphabet=st.sampled_from(list('ab"\\{}[]:, \n\t\x01é€😀')), max_size=12)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(-1e15, 1e15), _text)
_value = st.recursive(_scalar, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(_text, kids, max_size=4)), max_leaves=25)
_message = st.one_of(st.dictionaries(_text, _value, max_size=5), st.lists(_value, max_size=5))


def _read(parser_class, chunks):
    """What ovs.jsonrpc.Connection.recv does with its input: feed, drop
    what was consumed, take the message when the parser is done."""
    out, parser, pending = [], None, ""
    for chunk in chunks:
        pending += chunk
        while pending:
            if parser is None:
                parser = parser_class()
            pending = pending[parser.feed(pending):]
            if parser.is_done():
                out.append(parser.finish())
                parser = None
    return out, parser


def _cut(text, cuts):
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)])]


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, min_size=1, max_size=3), st.lists(st.integers(0, 10**6), max_size=12),
       st.booleans(), st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_same_messages_as_the_library_parser_however_the_stream_is_cut(
        messages, cuts, ascii_only, gap):
    text = gap.join(json.dumps(m, ensure_ascii=ascii_only) for m in messages)
    chunks = _cut(text, cuts)
    ours, left = _read(streamjson.StreamParser, chunks)
    theirs, _ = _read(ovs.json.Parser, chunks)
    assert ours == theirs == messages
    assert left is None or not left.is_done()


def test_each_message_ends_where_it_ends():
    p = streamjson.StreamParser()
    first = '{"id": 1, "result": ["}", "\\"{"]}'
    assert p.feed(first + ' {"id": 2}') == len(first)
    assert p.finish() == {"id": 1, "result": ["}", '"{']}


def test_a_string_cut_after_a_backslash_goes_on():
    p = streamjson.StreamParser()
    for part in ('{"a": "x\\', '"}', '"}'):
        assert p.feed(part) == len(part)
        if p.is_done():
            break
    assert p.finish() == {"a": 'x"}'}


def test_bad_streams_are_errors_not_values():
    for text in ('"just a string"', "42 ", "} {", '{"a": NaN}', '{"a": 1,}', "]"):
        p = streamjson.StreamParser()
        p.feed(text)
        assert p.is_done(), text
        assert isinstance(p.finish(), str), text
    p = streamjson.StreamParser()
    p.feed('{"a": [1, 2')
    assert not p.is_done()
    assert p.finish() == "syntax error: unexpected end of input"


def test_ovsdb_connections_read_with_it():
    import agent.ovsdb.connection  # noqa: F401 - installs the stream parser
    if ovs.json.PARSER == ovs.json.PARSER_C:
        return
    conn = ovs.jsonrpc.Connection(types.SimpleNamespace(name="unix:test"))
    assert isinstance(conn.parser, streamjson.StreamParser)
    conn.parser = None  # as the library does after each message
    assert isinstance(conn.parser, streamjson.StreamParser)
    assert ovs.json.from_string('{"a": [1, "b"]}') == {"a": [1, "b"]}
