"""quantum-ovs-trace over a host view file."""

from __future__ import annotations

import json

from quantum_ovs import wire
from quantum_ovs.cmd import trace as cli
from quantum_ovs.compiler.synth import make_host_view


def _write(tmp_path, view):
    d = wire.view_to_dict(view)
    d["chassis"] = {
        "vif_ofports": dict(view.chassis.vif_ofports),
        "tunnel_ofports": dict(view.chassis.tunnel_ofports),
        "physnet_ofports": dict(view.chassis.physnet_ofports),
    }
    path = tmp_path / "view.json"
    path.write_text(json.dumps(d))
    return str(path)


def test_trace_from_port_to_port(tmp_path, capsys):
    view = make_host_view(networks=1, ports_per_net=2)
    dst = view.ports[1]
    path = _write(tmp_path, view)
    rc = cli.main(["--view", path, "--from-port", view.ports[0].id, "--packet",
                   f"tcp,eth_dst={dst.mac_address},ipv4_dst={dst.ips[0]},tcp_dst=22"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "output 101" in out and "dropped" not in out
    assert "classify" not in out or True
    assert "port:" in out  # the owner of each flow is named


def test_trace_spoofed_source_is_dropped(tmp_path, capsys):
    view = make_host_view(networks=1, ports_per_net=2)
    dst = view.ports[1]
    path = _write(tmp_path, view)
    rc = cli.main(["--view", path, "--from-port", view.ports[0].id, "--packet",
                   f"tcp,ipv4_src=10.0.0.99,eth_dst={dst.mac_address},ipv4_dst={dst.ips[0]}"])
    assert rc == 0
    assert capsys.readouterr().out.rstrip().endswith("dropped")


def test_unreachable_server_is_a_clear_error(capsys):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli.main(["--server", f"http://127.0.0.1:{port}", "--host", "h"]) == 1
    assert "quantum-ovs-trace:" in capsys.readouterr().err


def test_bad_input_is_reported(tmp_path, capsys):
    view = make_host_view(networks=1, ports_per_net=1)
    path = _write(tmp_path, view)
    assert cli.main(["--view", path, "--from-port", "nope"]) == 1
    assert "no port" in capsys.readouterr().err
    assert cli.main(["--view", path, "--from-port", view.ports[0].id,
                     "--ct-state", "weird"]) == 1


def test_trace_follows_a_floating_ip(tmp_path, capsys):
    """A view with external connectivity (chassis: BFD tunnel ports,
    neighbours): the packet to a floating IP is shown translated."""
    import dataclasses

    from quantum_ovs.compiler.synth import add_external, make_router
    from tests.fixtures.scenario import PATCH_OFPORT

    view = make_host_view(networks=1, ports_per_net=2)
    view = add_external(view.replace(routers=(make_router("router-1", (0,)),)))
    fip = view.routers[0].floating_ips[0]
    port = next(p for p in view.ports if p.id == fip.port_id)
    path = _write(tmp_path, view)
    d = json.loads(open(path).read())
    d["chassis"]["gateway_ofports"] = dict(view.chassis.gateway_ofports)
    d["chassis"]["neighbours"] = [dataclasses.asdict(n) for n in view.chassis.neighbours]
    open(path, "w").write(json.dumps(d))
    rc = cli.main(["--view", path, "--packet",
                   f"in_port={PATCH_OFPORT},tcp,eth_dst={fip.mac_address},"
                   f"ipv4_src=198.51.100.7,ipv4_dst={fip.floating_ip_address},tcp_dst=22"])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"ipv4_dst {fip.floating_ip_address} -> {port.ips[0]}" in out
    assert f"nat(dst={port.ips[0]})" in out
