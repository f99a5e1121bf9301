"""Reviewer tests (session 27 review of af037e3..HEAD)."""

import sqlalchemy as sa

from quantum_ovs.extensions import floatingips as fipmod
from tests.functional.test_floatingips import ADMIN, F, R, _fip, _topology
from tests.functional.test_floatingips import l3  # noqa: F401 - the fixture


def test_remove_extraroutes_is_not_refused_by_a_lowered_router_route_quota(l3):  # noqa: F811
    """remove_extraroutes goes through set_routes -> check_routes, which now
    calls quotas.check_limit(len(remaining)).  The quota update does not
    compare router_route with any usage (used is always 0), so an admin can
    lower it below what a router already has; then removing *some* routes
    is a 409 OverQuota -- a removal refused by a quota."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    rid = router["id"]
    routes = [{"destination": f"172.16.{i}.0/24", "nexthop": "10.0.0.9"} for i in range(5)]
    l3.put(f"{R}/{rid}", {"router": {"routes": routes}}, status=200)
    l3.put("/v2.0/quotas/p1", {"quota": {"router_route": 2}}, status=200, **ADMIN)
    r = l3.put(f"{R}/{rid}/remove_extraroutes", {"router": {"routes": routes[:1]}})
    assert r.status_int == 200, (r.status, r.text[:300])


def test_update_pf_reads_the_forwarding_after_the_floating_ip_lock(l3, monkeypatch):  # noqa: F811
    """update_pf now does ``s.get(PortForwarding, pf_id)`` before it locks
    the ports and the floating IP.  Under READ COMMITTED (PostgreSQL,
    MySQL), a concurrent update of that forwarding that commits while this
    transaction waits for the locks is not seen: the forwarding object is
    already in the session's identity map, and fip.forwardings (loaded
    after the lock) hands back that same stale object.  pf_check then
    validates the stale internal port/address, and the response reports
    them although the row holds the other writer's.  Simulated here by a
    raw UPDATE (what the other writer committed) right after the port lock."""
    ext_net, ext_sub, router, net, sub, port = _topology(l3)
    other = l3.port(net["id"], project="p1")
    f = _fip(l3, floating_network_id=ext_net["id"])
    pf = l3.post(f"{F}/{f['id']}/port_forwardings", {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": port["id"],
        "internal_ip_address": port["fixed_ips"][0]["ip_address"],
        "internal_port": 80, "external_port": 8080}}, project="p1",
        status=201).data["port_forwarding"]
    real = fipmod.FloatingIPs._lock_ports
    calls = []

    def lock_then_concurrent_commit(s, ids):
        out = real(s, ids)
        calls.append(ids)
        if len(calls) > 1:
            return out  # (the transaction tried again: nobody writes this time)
        s.connection().execute(sa.text(
            "UPDATE portforwardings SET internal_port_id = :p, internal_ip_address = :ip "
            "WHERE id = :id"), {"p": other["id"], "ip": other["fixed_ips"][0]["ip_address"],
                                "id": pf["id"]})
        return out
    monkeypatch.setattr(fipmod.FloatingIPs, "_lock_ports",
                        staticmethod(lock_then_concurrent_commit))
    got = l3.put(f"{F}/{f['id']}/port_forwardings/{pf['id']}",
                 {"port_forwarding": {"external_port": 9090}}, project="p1",
                 status=200).data["port_forwarding"]
    monkeypatch.undo()
    stored = l3.get(f"{F}/{f['id']}/port_forwardings/{pf['id']}", project="p1",
                    status=200).data["port_forwarding"]
    assert got["internal_port_id"] == stored["internal_port_id"], (got, stored)
    assert len(calls) == 2  # the moved forwarding made the write start again
