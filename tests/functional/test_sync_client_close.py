"""SyncClient.close() wakes a pending long poll against a real server."""

import threading
import time

import pytest

from agent import sync_client
from quantum_ovs.testing.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("sync-close")
    with ServerProcess(f"sqlite:///{d}/sync.sqlite") as s:
        yield s


def test_close_interrupts_a_long_poll(server):
    client = sync_client.SyncClient(server.url, "hv-close",
                                    server.agent_credential("hv-close"))
    kind, _view, revision = client.poll(-1, 0)
    assert kind == "full"
    result = {}

    def long_poll():
        try:
            result["value"] = client.poll(revision, 25)
        except Exception as e:  # noqa: BLE001 - handed to the test
            result["error"] = e

    t = threading.Thread(target=long_poll, daemon=True)
    t.start()
    time.sleep(0.5)  # the request is at the server, which holds it
    assert t.is_alive()
    started = time.monotonic()
    client.close()
    t.join(5)
    took = time.monotonic() - started
    assert not t.is_alive()
    assert took < 2.0, took
    assert isinstance(result.get("error"), sync_client.Closed), result
    # Closed is a ServerUnavailable (callers that only know that one still
    # handle it), and every later call fails at once without connecting.
    assert isinstance(result["error"], sync_client.ServerUnavailable)
    with pytest.raises(sync_client.Closed):
        client.register()


def test_close_before_the_first_call(server):
    client = sync_client.SyncClient(server.url, "hv-close2")
    client.close()
    with pytest.raises(sync_client.Closed):
        client.poll(-1, 0)
