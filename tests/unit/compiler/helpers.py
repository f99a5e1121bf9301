"""Small builders for compiler tests: scenarios traced, not flow text."""

from __future__ import annotations

import dataclasses

from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.flow import CT_NEW, FlowDiff
from quantum_ovs.compiler.synth import (
    PHYSNET_OFPORTS,
    TUNNEL_OFPORTS,
    make_host_view,
    make_router,
)
from quantum_ovs.compiler.trace import Tracer
from quantum_ovs.model import Delta, HostRoute, HostView, Port, Rule, SecurityGroup

VXLAN_OFPORT = dict(TUNNEL_OFPORTS)["vxlan"]
GRE_OFPORT = dict(TUNNEL_OFPORTS)["gre"]
PATCH_OFPORT = dict(PHYSNET_OFPORTS)["physnet1"]
BROADCAST = "ff:ff:ff:ff:ff:ff"


class Scenario:
    """A host view compiled once; packets sent from ports by id."""

    def __init__(self, view: HostView) -> None:
        self.view = view
        self.engine = Engine.from_view(view)
        self.tracer = Tracer(self.engine.flows())
        self.ports = {p.id: p for p in view.ports}
        self.ofports = dict(view.chassis.vif_ofports)

    @classmethod
    def build(cls, **kw) -> "Scenario":
        return cls(make_host_view(**kw))

    def ofport(self, port_id: str) -> int:
        return self.ofports[port_id]

    def port(self, port_id: str) -> Port:
        return self.ports[port_id]

    def network_of(self, port_id: str):
        nid = self.ports[port_id].network_id
        return next(n for n in self.view.networks if n.id == nid)

    def send(self, src: str, ct_state=CT_NEW, **fields):
        """From local port ``src``: its MAC and first IP unless overridden."""
        p = self.ports[src]
        pkt = {"in_port": self.ofport(src), "eth_src": p.mac_address}
        pkt.update(fields)
        return self.tracer.run(pkt, ct_state)

    def inject(self, in_port: int, ct_state=CT_NEW, **fields):
        return self.tracer.run({"in_port": in_port, **fields}, ct_state)

    # packet shapes ------------------------------------------------------
    def tcp(self, src: str, dst: str, dport: int = 80, sport: int = 40000, **kw):
        return self.ip(src, dst, ip_proto=6, tcp_src=sport, tcp_dst=dport, **kw)

    def udp(self, src: str, dst: str, dport: int = 53, sport: int = 40000, **kw):
        return self.ip(src, dst, ip_proto=17, udp_src=sport, udp_dst=dport, **kw)

    def ip(self, src: str, dst: str, **kw):
        s, d = self.ports[src], self.ports[dst]
        fields = {"eth_dst": d.mac_address, "eth_type": 0x0800, "ipv4_src": s.ips[0],
                  "ipv4_dst": d.ips[0], "ip_proto": 6, "tcp_src": 40000, "tcp_dst": 80}
        fields.update(kw)
        return self.send(src, **fields)

    def arp_request(self, src: str, target_ip: str, **kw):
        s = self.ports[src]
        fields = {"eth_dst": BROADCAST, "eth_type": 0x0806, "arp_op": 1,
                  "arp_spa": s.ips[0], "arp_sha": s.mac_address, "arp_tpa": target_ip,
                  "arp_tha": "00:00:00:00:00:00"}
        fields.update(kw)
        return self.send(src, **fields)


def flows_of(engine) -> frozenset:
    return engine.flows()


# --------------------------------------------------- driving an engine
HOST = "host-a"


def base_view() -> HostView:
    """Two networks, local and remote ports, and two groups that reference
    each other (sg-web egress to sg-db, sg-db ingress from sg-web); a router
    between the two networks with an extra route via port-0-2 (remote)."""
    view = make_host_view(networks=2, ports_per_net=2, remote_hosts=2, remote_ports_per_net=2)
    web = SecurityGroup("sg-web", (
        Rule("web-80", "sg-web", "ingress", "IPv4", 6, 80, 80),
        Rule("web-db", "sg-web", "egress", "IPv4", 6, 5432, 5432, remote_group_id="sg-db"),
    ), frozenset({"10.0.0.10", "10.0.1.10"}))
    db = SecurityGroup("sg-db", (
        Rule("db-in", "sg-db", "ingress", "IPv4", 6, 5432, 5432, remote_group_id="sg-web"),
    ), frozenset({"10.0.0.11"}))
    router = make_router("router-1", (0, 1), (HostRoute("10.9.0.0/16", "10.0.0.12"),))
    return view.replace(security_groups=view.security_groups + (web, db), routers=(router,))


def change(engine: Engine, **delta) -> FlowDiff:
    """One model change, the way the agent makes it: a Delta."""
    return engine.apply(Delta(revision=engine.revision, **delta))


def plug(engine: Engine, port_id: str, ofport: int | None) -> FlowDiff:
    """A VIF plugged on ``ofport`` (None: unplugged), through set_chassis
    as the agent does."""
    ch = engine.chassis()
    vif = dict(ch.vif_ofports)
    if ofport is None:
        vif.pop(port_id, None)
    else:
        vif[port_id] = ofport
    return engine.set_chassis(dataclasses.replace(ch, vif_ofports=tuple(vif.items())))
