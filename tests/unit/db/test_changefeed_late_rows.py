"""A change committed late (a gap in the sequence that fills in) must be
in the feed's list before the watermark passes it: long polls read the
watermark and the list without the feed's lock."""

import time

from quantum_ovs.db import changefeed
from quantum_ovs.db.changefeed import Change, ChangeFeed
from tests.unit.db.feed_fakes import FakeDB, Result


def _change(seq):
    return Change(seq, "port", f"p{seq}", "net-new", "hv1", "create", None)


def test_a_late_change_is_listed_before_the_watermark_passes_it(monkeypatch):
    db = FakeDB([Result(scalar=4)])
    feed = ChangeFeed(db)
    seen = []

    def look():
        mark = feed.watermark
        listed = {c.seq for c in feed.since(4)}
        seen.append((mark, listed))
        assert all(seq in listed for seq in (5, 6) if seq <= mark), (mark, listed)

    class Gaps(dict):
        def pop(self, *a):
            try:
                return super().pop(*a)
            finally:
                look()

    real_insort = changefeed.bisect.insort

    def insort(*a, **kw):
        real_insort(*a, **kw)
        look()

    monkeypatch.setattr(changefeed.bisect, "insort", insort)
    # Change 6 is in; 5 was missing when 6 was read (a gap).
    feed.items, feed.latest, feed.gaps = [_change(6)], 6, Gaps({5: time.monotonic()})
    assert feed.watermark == 4
    db.answers[:] = [Result(rows=[]), Result(rows=[_change(5)])]  # no new rows; 5 late
    feed._refresh()
    assert feed.watermark == 6 and [c.seq for c in feed.since(4)] == [5, 6]
    assert len(seen) == 2  # looked between the two steps
