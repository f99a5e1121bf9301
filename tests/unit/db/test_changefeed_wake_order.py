"""A change wakes the waiters it concerns most first: those of the
changed port's host, then those on its network, then those that only see
a security group's members change (a port in a default group spanning
every host wakes them all, and the first woken are answered first)."""

import contextlib

from quantum_ovs.db.changefeed import Change, ChangeFeed


class _Result:
    def __init__(self, rows=(), scalar=None):
        self.rows, self.value = list(rows), scalar

    def all(self):
        return self.rows

    def scalar(self):
        return self.value


class _DB:
    def __init__(self, answers):
        self.answers = answers
        self.after_write, self.on_dispose = [], []

    def listener(self):
        return None

    @contextlib.contextmanager
    def reader(self):
        answers = self.answers

        class Session:
            def execute(self, _query):
                return answers.pop(0)
        yield Session()


def test_the_port_host_then_its_network_then_group_members_are_woken():
    woken = []

    class Event:
        def __init__(self):
            self.name, self.flag = None, False

        def set(self):  # as threading.Event's: once until cleared
            if not self.flag:
                self.flag = True
                woken.append(self.name)

    db = _DB([_Result(scalar=4)])
    feed = ChangeFeed(db)
    feed.event_factory = Event
    names = {}
    # Subscribed in an order that is not the one expected, many of each.
    for i in range(30):
        for kind, keys in (("group", [("group", "sg-default")]),
                           ("net", [("net", "net-1"), ("group", "sg-default")]),
                           ("host", [("host", "hv-1"), ("net", "net-1"),
                                     ("group", "sg-default")])):
            w = feed.subscribe(keys)
            w.event.name = kind
            names[w] = kind
    # One port create in the default group: the port row, then the
    # group's membership row (as the plugin writes them).
    db.answers += [_Result(rows=[
        Change(5, "sg_member", "sg-default", None, None, "update", None),
        Change(6, "port", "p1", "net-1", "hv-1", "create", None)])]
    feed._refresh()
    first = {kind: woken.index(kind) for kind in ("host", "net", "group")}
    last = {kind: len(woken) - 1 - woken[::-1].index(kind) for kind in ("host", "net", "group")}
    assert last["host"] < first["net"] and last["net"] < first["group"], woken
    assert sorted(set(woken)) == ["group", "host", "net"]
    feed.stop()
