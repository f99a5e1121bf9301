"""Agent.stop() is prompt and leaves the data plane alone.

A real quantum-ovs-server (SQLite), a private OVS and the agent in-process;
stop() is called while the sync thread waits in its long poll.
"""

import re
import threading
import time

import pytest

from agent.daemon import Agent, Settings
from quantum_ovs.testing.server import ServerProcess

HOST = "hv-stop"


@pytest.fixture
def server(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path}/stop.sqlite") as s:
        yield s


def our_flows(ovs):
    return sorted(re.sub(r"(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*,\s*", "", x)
                  for x in ovs.dump_flows("br-int") if "cookie=0x51" in x)


def test_stop_interrupts_the_long_poll_and_keeps_the_flows(ovs, server, tmp_path):
    agent = Agent(Settings(host=HOST, server_url=server.url, ovsdb=ovs.db_remote,
                           token=server.agent_credential(HOST),
                           datapath_type="netdev", local_ip="192.0.2.9",
                           tunnel_types=("vxlan",),
                           of_listen=f"unix:{ovs.rundir}/qovs-of.sock",
                           state_path=str(tmp_path / "state"),
                           report_interval=30, polling_interval=25))
    # Know when the sync thread has gone into a long poll (the first poll,
    # for the full view, does not wait).
    in_long_poll = threading.Event()
    poll = agent.client.poll_stream

    def watched_poll(since, wait=30.0):
        if wait > 0:
            in_long_poll.set()
        return poll(since, wait)

    agent.client.poll_stream = watched_poll
    agent.start()
    stopped = False
    try:
        assert agent.ready.wait(15)
        flows = our_flows(ovs)
        assert flows  # the base pipeline is installed
        assert in_long_poll.wait(10)
        time.sleep(0.3)  # let the request reach the server
        started = time.monotonic()
        agent.stop()
        stopped = True
        took = time.monotonic() - started
        # It used to wait out the 5 s join on the sync thread.
        assert took < 4.0, took
        assert [t.name for t in agent.threads if t.is_alive()] == []
        # Hitless: stopping removes nothing from the switch.
        assert our_flows(ovs) == flows
    finally:
        if not stopped:
            agent.stop()
