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


# api_time's texts of the stored times it saw last (a listing's rows share
# a few: a bulk create's all have the same second); naive ones only, as an
# aware time equals every time of the same instant, whatever its zone.
_TEXTS = {}
_TEXTS_MAX = 4096


def api_time(value):
    if type(value) is datetime.datetime and value.tzinfo is None:
        text = _TEXTS.get(value)
        if text is not None:
            return text
        if value.year >= 1000:
            # The same text as strftime(API_FORMAT) in a third of its time;
            # stored times have no microseconds.
            text = value.isoformat(timespec="seconds") + "Z" if value.microsecond \
                else value.isoformat() + "Z"
            if len(_TEXTS) >= _TEXTS_MAX:
                _TEXTS.clear()
            _TEXTS[value] = text
            return text
    if not value:
        return None
    return value.strftime(API_FORMAT)


def agent_time(value):
    return value.strftime(AGENT_FORMAT) if value else None
