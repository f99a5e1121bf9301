"""A change committed late (a gap in the sequence that fills in) must be
in the feed's list before the watermark passes it: long polls read the
watermark and the list without the feed's lock."""

import time

from quantum_ovs.db import changefeed
from quantum_ovs.db.changefeed import Change, ChangeFeed
from tests.unit.db.feed_fakes import FakeDB, Result, started_at


def _change(seq):
    return Change(seq, "port", f"p{seq}", "net-new", "hv1", "create", None)


def test_a_late_change_is_listed_before_the_watermark_passes_it(monkeypatch):
    db = FakeDB(started_at(4))
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


def test_a_new_feed_waits_for_the_numbers_missing_below_the_newest():
    """A feed starts from the newest rows and takes the numbers missing
    among them as gaps: a write holding one of them commits after a later
    one, and the feed, started in between, still reads it (review 19)."""
    rows = [_change(i) for i in (1, 2, 4, 6)]
    db = FakeDB([Result(scalar=6), Result(rows=rows)])
    feed = ChangeFeed(db)
    assert feed.latest == 6 and feed.floor == 0 and set(feed.gaps) == {3, 5}
    assert feed.watermark == 2  # nothing past a missing number is answered yet
    db.answers[:] = [Result(rows=[]), Result(rows=[_change(3)])]  # 3 commits late
    feed._refresh()
    assert feed.watermark == 4 and [c.seq for c in feed.since(2)] == [3, 4, 6]
