"""A malformed item of the server's answer is left out and logged once,
however often the server sends it again (sync_client._refused)."""

from __future__ import annotations

import json
import logging

from agent import sync_client
from quantum_ovs import wire
from quantum_ovs.compiler.synth import make_host_view


def test_a_malformed_item_is_logged_once_not_at_every_poll(caplog):
    view = make_host_view(networks=1, ports_per_net=2)
    d = wire.view_to_dict(view)
    d["ports"][0]["mac_address"] = None
    del d["ports"][0]["network_id"]
    raw = json.dumps({"full": True, "view": d, "revision": 7}).encode()
    sync_client._REFUSED_SEEN.clear()
    with caplog.at_level(logging.ERROR, logger=sync_client.LOG.name):
        for _ in range(3):
            kind, got, rev = sync_client.SyncClient.decode_state(raw)
            assert [p.id for p in got.ports] == [p.id for p in view.ports[1:]]
    logged = [r for r in caplog.records if "malformed port" in r.getMessage()]
    assert len(logged) == 1 and view.ports[0].id in logged[0].getMessage()
