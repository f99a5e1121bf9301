"""Time, in one place: the clock the server stores and the two ways the
API shows a stored time.

Stored times are naive UTC datetimes. Standard attributes (created_at,
updated_at) are shown as ISO 8601 with a Z, as Neutron shows them; the
agents resource and agent credentials show "YYYY-MM-DD HH:MM:SS", as
Neutron's agents API does.
"""

import datetime

API_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
AGENT_FORMAT = "%Y-%m-%d %H:%M:%S"


def utcnow(precise=False):
    """Now, naive UTC; whole seconds unless ``precise`` (heartbeats keep
    microseconds so that liveness is not rounded)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now if precise else now.replace(microsecond=0)


def api_time(value):
    if not value:
        return None
    if type(value) is datetime.datetime and value.tzinfo is None and value.year >= 1000:
        # The same text as strftime(API_FORMAT) in a third of its time (a
        # listing formats two per row); stored times have no microseconds.
        if value.microsecond:
            return value.isoformat(timespec="seconds") + "Z"
        return value.isoformat() + "Z"
    return value.strftime(API_FORMAT)


def agent_time(value):
    return value.strftime(AGENT_FORMAT) if value else None
