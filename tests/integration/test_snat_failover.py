"""SNAT fails over in the data plane (issue 14): three hypervisors, the
instances on hv1, the router's gateway hosts hv2 then hv3.  hv1 sends
SNAT traffic with bundle(active_backup) over its BFD tunnels to hv2 and
hv3; when hv2's switch dies, BFD on hv1's tunnel to hv2 goes down and the
bundle picks hv3 by itself: no agent, no server, no flow change (hv3, a
standby, SNATs what is redirected to it; the gateway MAC moves on the
provider network with hv3's first packet).  Floating-IP traffic on hv1
does not involve the gateway hosts and loses nothing.

The rig is tests/integration/test_external_nat.py's, built for 3 hosts;
BFD runs at 100 ms here (gwagent's plumbing chooses the real intervals).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from quantum_ovs.testing.ovs import missing_prerequisites
from tests.integration.test_external_nat import FIP_A, INET_IP, _build, eventually, ping

pytestmark = pytest.mark.skipif(bool(missing_prerequisites()),
                                reason=str(missing_prerequisites()))

INTERVAL = 0.1


@pytest.fixture(scope="module")
def rig3():
    yield from _build(3, ("hv2", "hv3"), "172.31.11")


def _pinger(ns, ip, count):
    return subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-i", str(INTERVAL), "-W",
                             "1", "-c", str(count), ip],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _received(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def test_snat_survives_the_active_gateway_hosts_death(rig3):
    b = rig3.inst["b"]
    assert eventually(lambda: ping(b.ns, INET_IP), 15)  # SNAT through hv2 works
    assert eventually(lambda: ping(rig3.inet, FIP_A), 10)
    ct2 = rig3.hosts["hv2"].ovs.appctl("dpctl/dump-conntrack")
    assert b.ip in ct2  # hv2 is the one translating
    count = 80  # 8 s
    snat = _pinger(b.ns, INET_IP, count)
    fip = _pinger(rig3.inet, FIP_A, count)
    time.sleep(2.0)
    rig3.hosts["hv2"].ovs.stop_vswitchd(signal.SIGKILL)
    out_snat, _ = snat.communicate(timeout=60)
    out_fip, _ = fip.communicate(timeout=60)
    sent, got = _received(out_snat)
    loss_s = (sent - got) * INTERVAL
    print(f"\nSNAT failover: {sent - got} of {sent} echoes lost = {loss_s:.1f} s "
          f"(interval {INTERVAL} s)")
    fsent, fgot = _received(out_fip)
    print(f"floating IP on hv1 meanwhile: {fsent - fgot} of {fsent} lost")
    assert got > 0 and loss_s < 3.0, out_snat
    assert fgot == fsent, out_fip
    assert b.ip in rig3.hosts["hv3"].ovs.appctl("dpctl/dump-conntrack")
