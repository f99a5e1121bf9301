"""A stand-in database for ChangeFeed unit tests: each read answers the
next of a list of results."""

import contextlib


class Result:
    def __init__(self, rows=(), scalar=None):
        self.rows, self.value = list(rows), scalar

    def all(self):
        return self.rows

    def scalar(self):
        return self.value


class _Session:
    def __init__(self, answers):
        self.answers = answers

    def execute(self, _query):
        return self.answers.pop(0)


class FakeDB:
    """``answers``: the Results the feed's reads get, in order."""

    def __init__(self, answers):
        self.answers = answers
        self.after_write, self.on_dispose = [], []

    def listener(self):
        return None

    @contextlib.contextmanager
    def reader(self):
        yield _Session(self.answers)


def started_at(newest):
    """The answers a ChangeFeed's start reads: the newest sequence number,
    then the rows of the numbers up to it (every one present)."""
    from quantum_ovs.db.changefeed import Change
    return [Result(scalar=newest), Result(rows=[
        Change(i, "network", f"n{i}", f"n{i}", None, "create", None)
        for i in range(1, newest + 1)])]
