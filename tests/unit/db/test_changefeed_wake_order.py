"""A change wakes the waiters it concerns most first: those of the
changed port's host, then those on its network, then those that only see
a security group's members change (a port in a default group spanning
every host wakes them all, and the first woken are answered first)."""


from quantum_ovs.db.changefeed import Change, ChangeFeed
from tests.unit.db.feed_fakes import FakeDB, Result, started_at


def test_the_port_host_then_its_network_then_group_members_are_woken():
    woken = []

    class Event:
        def __init__(self):
            self.name, self.flag = None, False

        def set(self):  # as threading.Event's: once until cleared
            if not self.flag:
                self.flag = True
                woken.append(self.name)

    db = FakeDB(started_at(4))
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
    db.answers += [Result(rows=[
        Change(5, "sg_member", "sg-default", None, None, "update", None),
        Change(6, "port", "p1", "net-1", "hv-1", "create", None)])]
    feed._refresh()
    first = {kind: woken.index(kind) for kind in ("host", "net", "group")}
    last = {kind: len(woken) - 1 - woken[::-1].index(kind) for kind in ("host", "net", "group")}
    assert last["host"] < first["net"] and last["net"] < first["group"], woken
    assert sorted(set(woken)) == ["group", "host", "net"]
    feed.stop()


def test_those_only_seeing_members_change_are_set_later():
    """Where the event has set_later (quantum-ovs-server's green event),
    the waiters a change does not concern directly are
    resumed after the others, whatever came first."""
    how = []

    class Event:
        def __init__(self):
            self.name = None

        def set(self):
            how.append((self.name, "set"))

        def set_later(self):
            how.append((self.name, "later"))

    db = FakeDB(started_at(4))
    feed = ChangeFeed(db)
    feed.event_factory = Event
    for kind, keys in (("group", [("group", "sg-default")]),
                       ("host", [("host", "hv-1"), ("group", "sg-default")])):
        feed.subscribe(keys).event.name = kind
    db.answers += [Result(rows=[
        Change(5, "sg_member", "sg-default", None, None, "update", None),
        Change(6, "port", "p1", "net-1", "hv-1", "create", None)])]
    feed._refresh()
    assert how[0] == ("host", "set") and ("group", "later") in how
    assert ("group", "set") not in how
    feed.stop()

