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
