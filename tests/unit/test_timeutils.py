"""api_time takes a faster path than strftime for stored (naive) times:
the text must be strftime(API_FORMAT)'s for every kind of value."""

import datetime

import pytest

from quantum_ovs.timeutils import API_FORMAT, api_time

UTC = datetime.timezone.utc


@pytest.mark.parametrize("value", [
    datetime.datetime(2026, 12, 5, 2, 6, 30),
    datetime.datetime(2026, 12, 5, 2, 6, 30, 999999),
    datetime.datetime(1000, 1, 1, 0, 0, 0, 1),
    datetime.datetime(999, 12, 31, 23, 59, 59),  # strftime's %Y does not pad
    datetime.datetime(9999, 12, 31, 23, 59, 59, 500000),
    datetime.datetime(2026, 1, 1, tzinfo=UTC),  # no offset in the text
    datetime.datetime(2026, 1, 1, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=3))),
    datetime.date(2026, 1, 2),
])
def test_api_time_is_strftimes_text(value):
    assert api_time(value) == value.strftime(API_FORMAT)


def test_api_time_of_nothing():
    assert api_time(None) is None


def test_api_time_of_the_same_instant_in_another_zone():
    """Texts are remembered for naive times only: an aware time is equal
    to every time of its instant, and its text is that of its own zone."""
    naive = datetime.datetime(2026, 1, 1, 2, 0, 0)
    aware = datetime.datetime(2026, 1, 1, 5, 0, 0,
                              tzinfo=datetime.timezone(datetime.timedelta(hours=3)))
    for _ in range(2):
        assert api_time(naive) == "2026-01-01T02:00:00Z"
        assert api_time(aware) == "2026-01-01T05:00:00Z"
        assert api_time(naive.replace(tzinfo=UTC)) == "2026-01-01T02:00:00Z"
