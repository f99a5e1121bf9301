"""The agent API: registration, binding, long-poll deltas, port reports."""

import threading
import time

import pytest

from quantum_ovs import wire
from tests.fixtures.views import canon

HOST_A, HOST_B, HOST_C = "hv-a", "hv-b", "hv-c"


def register(api, host, tunnel_ip, **conf):
    conf.setdefault("tunnel_types", ["vxlan", "gre"])
    conf.setdefault("bridge_mappings", {})
    return api.post("/agent-api/v1/agents", {"host": host, "tunnel_ip": tunnel_ip,
                                             "configurations": conf, "started": True},
                    status=200).data


def state(api, host, since=-1, timeout=0, features="group_members"):
    return api.get(f"/agent-api/v1/hosts/{host}/state?since={since}&timeout={timeout}"
                   f"&features={features}", status=200).data


class Follower:
    """An agent's view of ``host``, from a full view and then deltas; each
    step() checks it against a fresh full view, and its engine against a
    full compile of that view."""

    def __init__(self, api, host, features="group_members"):
        from quantum_ovs.compiler.engine import Engine
        self.api, self.host, self.features = api, host, features
        first = state(api, host, features=features)
        self.view, self.rev = wire.view_from_dict(first["view"]), first["revision"]
        self.engine = Engine.from_view(self.view)

    def step(self, what=""):
        """Take the next answer; the full view it must equal."""
        from quantum_ovs.compiler.engine import compile_flows
        reply = state(self.api, self.host, since=self.rev, features=self.features)
        if reply["full"]:
            self.view = wire.view_from_dict(reply["view"])
            self.engine.update(self.view)
        else:
            d = wire.delta_from_dict(reply["delta"])
            self.view = wire.apply_delta(self.view, d)
            self.engine.apply(d)
        self.rev = reply["revision"]
        want = wire.view_from_dict(state(self.api, self.host)["view"])
        assert canon(self.view) == canon(want), what
        assert self.engine.flows() == compile_flows(want, self.engine.alloc), what
        return want

    def group(self, gid):
        return {g.id: g for g in self.view.security_groups}[gid]


def bound_port(api, net_id, host, **kw):
    return api.post("/v2.0/ports", {"port": dict(network_id=net_id,
                                                 **{"binding:host_id": host}, **kw)},
                    admin=True, status=201).data["port"]


def test_register_and_agents_resource(api):
    out = register(api, HOST_A, "192.0.2.1", integration_bridge="br-int")
    assert out["agent"]["host"] == HOST_A and out["agent"]["alive"] is True
    agents = api.get("/v2.0/agents", admin=True, status=200).data["agents"]
    assert [(a["host"], a["agent_type"], a["binary"]) for a in agents] == [
        (HOST_A, "Open vSwitch agent", "quantum-ovs-agent")]
    assert agents[0]["configurations"]["tunnel_ip"] == "192.0.2.1"
    assert api.get("/v2.0/agents", status=200).data["agents"] == []  # not for tenants
    aid = agents[0]["id"]
    upd = api.put(f"/v2.0/agents/{aid}", {"agent": {"admin_state_up": False}}, admin=True,
                  status=200).data["agent"]
    assert upd["admin_state_up"] is False
    api.put(f"/v2.0/agents/{aid}", {"agent": {"host": "x"}}, admin=True, status=400)
    api.post("/v2.0/agents", {"agent": {}}, admin=True, status=405)
    r = api.delete(f"/v2.0/agents/{aid}", admin=True, status=409)  # alive
    assert r.data["NeutronError"]["type"] == "AgentInUse"
    api.post("/agent-api/v1/agents", {"tunnel_ip": "x"}, status=400)
    api.post("/agent-api/v1/agents", {"host": "h", "tunnel_ip": "not-an-ip"}, status=400)


def test_binding_follows_live_agents(api):
    net = api.network()
    api.subnet(net["id"])
    port = bound_port(api, net["id"], HOST_A)
    assert port["binding:vif_type"] == "binding_failed"
    assert port["status"] == "DOWN"
    register(api, HOST_A, "192.0.2.1", integration_bridge="br-int", datapath_type="netdev")
    port = api.get(f"/v2.0/ports/{port['id']}", admin=True, status=200).data["port"]
    assert port["binding:vif_type"] == "ovs"
    assert port["binding:vif_details"] == {"port_filter": True, "connectivity": "l2",
                                           "bridge_name": "br-int", "datapath_type": "netdev",
                                           "ovs_hybrid_plug": False}
    owner_view = api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    assert "binding:host_id" not in owner_view and "binding:vif_type" not in owner_view
    unbound = api.port(net["id"])
    assert api.get(f"/v2.0/ports/{unbound['id']}", admin=True,
                   status=200).data["port"]["binding:vif_type"] == "unbound"
    on_a = api.get(f"/v2.0/ports?binding:host_id={HOST_A}&fields=id", admin=True,
                   status=200).data["ports"]
    assert on_a == [{"id": port["id"]}]
    unbound_ids = [p["id"] for p in api.get("/v2.0/ports?binding:vif_type=unbound",
                                            admin=True, status=200).data["ports"]]
    assert unbound_ids == [unbound["id"]]
    # a VLAN network on a physnet the agent has no bridge for
    api.plugin.conf.set_override("network_vlan_ranges", ["physnet1"], group="ml2_type_vlan")
    api.plugin.segments.__init__(api.plugin.conf)
    vlan = api.post("/v2.0/networks", {"network": {
        "name": "v", "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": 10}}, admin=True, status=201).data["network"]
    p2 = bound_port(api, vlan["id"], HOST_A)
    assert p2["binding:vif_type"] == "binding_failed"
    # a tenant may not bind
    api.post("/v2.0/ports", {"port": {"network_id": net["id"], "binding:host_id": HOST_A}},
             status=403)


def test_a_bulk_binds_each_port_by_its_own_host(api):
    """One bulk over several hosts: each port is bound by whether its own
    host has a live agent (the lookup is shared within the bulk, per host)."""
    register(api, HOST_A, "192.0.2.1", integration_bridge="br-int", datapath_type="netdev")
    register(api, HOST_B, "192.0.2.2")
    aid = next(a["id"] for a in api.get("/v2.0/agents", admin=True, status=200).data["agents"]
               if a["host"] == HOST_B)
    api.put(f"/v2.0/agents/{aid}", {"agent": {"admin_state_up": False}}, admin=True,
            status=200)
    net = api.network()
    api.subnet(net["id"])
    hosts = [HOST_A, "hv-nobody", HOST_B, HOST_A, "", "hv-nobody", HOST_A]
    made = api.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"], **({"binding:host_id": h} if h else {})} for h in hosts]},
        admin=True, status=201).data["ports"]
    want = {HOST_A: "ovs", "hv-nobody": "binding_failed", HOST_B: "binding_failed",
            "": "unbound"}
    assert [p["binding:vif_type"] for p in made] == [want[h] for h in hosts]
    for p, h in zip(made, hosts):
        got = api.get(f"/v2.0/ports/{p['id']}", admin=True, status=200).data["port"]
        assert (got["binding:host_id"], got["binding:vif_type"]) == (h, want[h])
    assert made[0]["binding:vif_details"]["datapath_type"] == "netdev"


def test_reports_move_port_status(api):
    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    api.subnet(net["id"])
    port = bound_port(api, net["id"], HOST_A)
    other = bound_port(api, net["id"], HOST_B)
    r = api.post(f"/agent-api/v1/hosts/{HOST_A}/ports",
                 {"plugged": [{"port_id": port["id"], "ofport": 7}],
                  "installed": [port["id"], other["id"]]}, status=200).data
    assert r["updated"] == 1  # a host reports only its own ports
    got = api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]
    assert got["status"] == "ACTIVE" and got["revision_number"] > port["revision_number"]
    assert api.get(f"/v2.0/ports/{other['id']}", status=200).data["port"]["status"] == "DOWN"
    api.post(f"/agent-api/v1/hosts/{HOST_A}/ports", {"unplugged": [port["id"]]}, status=200)
    assert api.get(f"/v2.0/ports/{port['id']}", status=200).data["port"]["status"] == "DOWN"
    api.post(f"/agent-api/v1/hosts/{HOST_A}/ports", {"plugged": "x"}, status=400)


def test_token_is_required_when_configured(make_api):
    api = make_api()
    api.plugin.conf.set_override("token", "s3cret", group="agent_api")
    r = api.post("/agent-api/v1/agents", {"host": "h"}, status=401)
    assert "X-Agent-Token" in r.data["NeutronError"]["message"]
    api.post("/agent-api/v1/agents", {"host": "h"}, headers={"X-Agent-Token": "s3cret"},
             status=200)
    api.get("/agent-api/v1/hosts/h/state", headers={"X-Agent-Token": "wrong"}, status=401)


def test_full_view_contents(api):
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    net = api.network()
    sub = api.subnet(net["id"], dns_nameservers=["192.0.2.53"])
    other_net = api.network()
    api.subnet(other_net["id"], "10.9.0.0/24")
    mine = bound_port(api, net["id"], HOST_A)
    theirs = bound_port(api, net["id"], HOST_B)
    bound_port(api, other_net["id"], HOST_B)  # a network host A does not have
    data = state(api, HOST_A)
    assert data["full"] is True and data["revision"] > 0
    view = wire.view_from_dict(data["view"])
    assert [n.id for n in view.networks] == [net["id"]]
    assert view.networks[0].segment.network_type == "vxlan"
    assert view.networks[0].segment.segmentation_id is not None
    assert [s.id for s in view.subnets] == [sub["id"]]
    assert view.subnets[0].dns_nameservers == ("192.0.2.53",)
    assert {p.id: p.host for p in view.ports} == {mine["id"]: HOST_A, theirs["id"]: HOST_B}
    assert [(h.name, h.tunnel_ip) for h in view.remote_hosts] == [(HOST_B, "192.0.2.2")]
    assert view.tunnel_ip == "192.0.2.1"


def test_the_wire_full_view_equals_the_model_one(api):
    """host_view.full_dict (what a poll answers, built from rows) writes
    exactly what wire.view_to_dict of the model view writes, for every
    kind of port: addresses, pairs, options, names, several groups, none,
    unbound, and one pending on another host (local there)."""
    from quantum_ovs.db import host_view
    for host, ip in ((HOST_A, "192.0.2.1"), (HOST_B, "192.0.2.2")):
        register(api, host, ip)
    net = api.network()
    sub = api.subnet(net["id"], "10.4.0.0/24")
    api.subnet(net["id"], "2001:db8:4::/64", ip_version=6)
    web = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                   status=201).data["security_group"]["id"]
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": web, "direction": "ingress", "remote_group_id": web}},
        status=201)
    bound_port(api, net["id"], HOST_A, security_groups=[web, default_group(api)],
               dns_name="vm1", allowed_address_pairs=[
                   {"ip_address": "10.4.0.200"}, {"ip_address": "10.4.1.0/24",
                                                  "mac_address": "fa:16:3e:00:00:09"}],
               extra_dhcp_opts=[{"opt_name": "bootfile-name", "opt_value": "pxe.0"},
                                {"opt_name": "tftp-server", "opt_value": "10.4.0.9",
                                 "ip_version": 4}])
    bound_port(api, net["id"], HOST_B, security_groups=[], port_security_enabled=False,
               fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.4.0.77"}])
    bound_port(api, net["id"], HOST_B, fixed_ips=[], admin_state_up=False)
    api.port(net["id"], admin=True)  # unbound
    moving = bound_port(api, net["id"], HOST_A, device_owner="compute:nova", device_id="vm-9")
    api.post(f"/v2.0/ports/{moving['id']}/bindings", {"binding": {"host": HOST_B}},
             admin=True, status=201)
    with api.db.reader() as s:
        for host in (HOST_A, HOST_B, HOST_C):
            model = wire.view_to_dict(host_view.full(s, host, 7))
            assert host_view.full_dict(s, host, 7) == model
            if host != HOST_C:
                assert len(model["ports"]) == 5
        seen = {p["id"]: p["host"] for p in host_view.full_dict(s, HOST_B, 7)["ports"]}
    assert seen[moving["id"]] == HOST_B  # pending there: local on B


def test_a_change_of_name_or_description_wakes_no_host(make_api):
    """A port, network, subnet or router renamed (or described): nothing
    any agent's view holds changed, so no host is woken (a member renaming
    its port on a shared provider network woke every host of it: found by
    review); the revision still moves, and a change agents see still
    wakes them."""
    api = make_api(service_plugins=["router"])
    for h in ("hv-0", "hv-1"):
        register(api, h, "192.0.2.%d" % (int(h[-1]) + 1))
    net = api.network(shared=True, project="admin-p", admin=True)
    sub = api.subnet(net["id"], "10.0.0.0/24", project="admin-p", admin=True)
    for h in ("hv-0", "hv-1"):
        bound_port(api, net["id"], h, project_id="admin-p")
    mine = api.port(net["id"], project="p1")
    router = api.post("/v2.0/routers", {"router": {"name": "r"}}, project="admin-p",
                      admin=True, status=201).data["router"]
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]},
            project="admin-p", admin=True, status=200)
    revs = {h: state(api, h)["revision"] for h in ("hv-0", "hv-1")}

    def woken():
        return [h for h, r in revs.items() if state(api, h, since=r)["revision"] != r]
    cosmetic = {"name": "renamed", "description": "d"}
    before = api.get(f"/v2.0/ports/{mine['id']}", project="p1",
                     status=200).data["port"]["revision_number"]
    api.put(f"/v2.0/ports/{mine['id']}", {"port": cosmetic}, project="p1", status=200)
    assert woken() == [], "port"
    assert api.get(f"/v2.0/ports/{mine['id']}", project="p1",
                   status=200).data["port"]["revision_number"] == before + 1
    for path, key in ((f"/v2.0/networks/{net['id']}", "network"),
                      (f"/v2.0/subnets/{sub['id']}", "subnet"),
                      (f"/v2.0/routers/{router['id']}", "router")):
        api.put(path, {key: cosmetic}, project="admin-p", admin=True, status=200)
        assert woken() == [], key
    api.put(f"/v2.0/ports/{mine['id']}", {"port": {"name": "again",
                                                   "admin_state_up": False}},
            project="p1", status=200)
    assert woken() == ["hv-0", "hv-1"]


def test_long_poll_wakes_only_the_hosts_concerned(api):
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    net = api.network()
    api.subnet(net["id"])
    bound_port(api, net["id"], HOST_A)
    # B's port belongs to another project, so it shares no security group
    # (and no remote-group member set) with the ports on A's network.
    lonely = api.network(project="p-b")
    api.subnet(lonely["id"], "10.7.0.0/24", project="p-b")
    bound_port(api, lonely["id"], HOST_B, project_id="p-b")
    rev_a = state(api, HOST_A)["revision"]
    rev_b = state(api, HOST_B)["revision"]
    results = {}

    def poll(host, rev, wait):
        started = time.monotonic()
        results[host] = (state(api, host, since=rev, timeout=wait),
                         time.monotonic() - started)

    # A waits up to 30 s (an answer well before is the change's), B 3 s.
    threads = [threading.Thread(target=poll, args=a) for a in
               ((HOST_A, rev_a, 30), (HOST_B, rev_b, 3))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    new = bound_port(api, net["id"], HOST_C)  # on A's network, not B's
    for t in threads:
        t.join(35)
    a, a_secs = results[HOST_A]
    b, b_secs = results[HOST_B]
    assert a["full"] is False and [p["id"] for p in a["delta"]["ports"]] == [new["id"]]
    assert a_secs < 20  # woken by the change, not by the timeout
    assert b["delta"]["ports"] == [] and b_secs >= 2.5  # nothing for B


OPS = ["add_local", "add_remote", "del_port", "move_port", "new_net_local",
       "update_port", "add_subnet", "del_net", "rule", "member", "retunnel",
       "member", "regroup", "readdress", "unrule", "ag_rule", "ag_add", "ag_remove",
       "rule", "regroup", "restate"]
# Partial group updates (issue 17) and the older format (whole groups on
# rule or local port changes).
PARTIAL, WHOLE = "group_members,group_rules", "group_members"


def default_group(api, project="p1"):
    groups = api.get("/v2.0/security-groups?name=default", project=project,
                     status=200).data["security_groups"]
    return groups[0]["id"]


@pytest.mark.parametrize("seed,features", [(s, PARTIAL) for s in range(6)] +
                         [(s, WHOLE) for s in range(2)])
def test_deltas_equal_full_views(api, seed, features):
    """Applying each delta to the agent's view gives the full view, and
    the compiler's engine applying it holds a full compile of that view:
    through port, membership and rule changes of two groups (the default
    group and "web", each naming either as a remote group) and ports
    moving between them."""
    import random

    from quantum_ovs.compiler.engine import Engine, compile_flows
    rnd = random.Random(seed)
    web = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                   status=201).data["security_group"]["id"]
    # a stateless group (its ports' flows in tables of their own)
    lone = api.post("/v2.0/security-groups", {"security_group": {
        "name": "lone", "stateful": False}}, status=201).data["security_group"]["id"]
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    register(api, HOST_C, "192.0.2.3")
    nets = []

    def new_net():
        n = api.network()
        api.subnet(n["id"], f"10.{len(nets)}.0.0/24")
        nets.append(n)
        return n

    new_net()
    ports = [bound_port(api, nets[0]["id"], HOST_A)]
    # Address groups: rules of the default group may name the first; the
    # second is named by no rule of HOST_A's (its changes are not HOST_A's).
    ags = [api.post("/v2.0/address-groups", {"address_group": {
        "name": f"ag{i}", "addresses": [f"172.16.{i}.0/24"]}}, status=201
    ).data["address_group"]["id"] for i in range(2)]
    first = state(api, HOST_A, features=features)
    view = wire.view_from_dict(first["view"])
    engine = Engine.from_view(view)
    rev = first["revision"]
    for step in range(30):
        # One to three operations between two polls.
        ops = [rnd.choice(OPS) for _ in range(rnd.choice((1, 1, 2, 3)))]
        for op in ops:
            live_nets = [n for n in nets if n is not None]
            if op == "add_local" and live_nets:
                ports.append(bound_port(api, rnd.choice(live_nets)["id"], HOST_A))
            elif op == "add_remote" and live_nets:
                ports.append(bound_port(api, rnd.choice(live_nets)["id"],
                                        rnd.choice([HOST_B, HOST_C])))
            elif op == "del_port" and ports:
                p = ports.pop(rnd.randrange(len(ports)))
                api.delete(f"/v2.0/ports/{p['id']}", admin=True, status=204)
            elif op == "move_port" and ports:
                p = rnd.choice(ports)
                api.put(f"/v2.0/ports/{p['id']}", {"port": {"binding:host_id": rnd.choice(
                    [HOST_A, HOST_B, HOST_C, ""])}}, admin=True, status=200)
            elif op == "new_net_local":
                ports.append(bound_port(api, new_net()["id"], HOST_A))
            elif op == "update_port" and ports:
                p = rnd.choice(ports)
                api.put(f"/v2.0/ports/{p['id']}", {"port": {"admin_state_up": rnd.random() < .5}},
                        admin=True, status=200)
            elif op == "add_subnet" and live_nets:
                n = rnd.choice(live_nets)
                api.post("/v2.0/subnets", {"subnet": {"network_id": n["id"], "ip_version": 6,
                                                      "cidr": f"2001:db8:{step}::/64"}},
                         admin=True)
            elif op == "del_net" and live_nets:
                n = rnd.choice(live_nets)
                for p in [p for p in ports if p["network_id"] == n["id"]]:
                    api.delete(f"/v2.0/ports/{p['id']}", admin=True, status=204)
                    ports.remove(p)
                api.delete(f"/v2.0/networks/{n['id']}", admin=True, status=204)
                nets[nets.index(n)] = None
            elif op == "retunnel":
                # A remote host's tunnel IP changes.
                register(api, rnd.choice([HOST_B, HOST_C]), f"192.0.2.{rnd.randrange(10, 200)}")
            elif op == "member":
                # A member of the default group (a remote group of HOST_A's
                # ports) appears on a network HOST_A does not hold.
                ports.append(bound_port(api, new_net()["id"], rnd.choice([HOST_B, HOST_C])))
            elif op == "regroup" and ports:
                # Into, out of and between the two groups.
                p = rnd.choice(ports)
                groups = rnd.choice([[], [default_group(api)], [web],
                                     [default_group(api), web], [lone]])
                p.update(api.put(f"/v2.0/ports/{p['id']}", {"port": {"security_groups": groups}},
                                 admin=True, status=200).data["port"])
            elif op == "readdress" and ports:
                p = rnd.choice(ports)
                ip = p["fixed_ips"][0]
                new = ip["ip_address"].rsplit(".", 1)[0] + f".{rnd.randrange(100, 250)}"
                r = api.put(f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [
                    {"subnet_id": ip["subnet_id"], "ip_address": new}]}}, admin=True)
                if r.status_int == 200:
                    p.update(r.data["port"])
            elif op == "unrule":
                group = rnd.choice([default_group(api), web])
                rules = api.get(f"/v2.0/security-group-rules?security_group_id="
                                f"{group}", status=200).data["security_group_rules"]
                if rules:
                    api.delete(f"/v2.0/security-group-rules/{rnd.choice(rules)['id']}",
                               status=204)
            elif op == "ag_rule":
                r = api.post("/v2.0/security-group-rules", {"security_group_rule": dict(
                    security_group_id=default_group(api), direction=rnd.choice(
                        ["ingress", "egress"]), ethertype="IPv4",
                    remote_address_group_id=ags[0])})
                assert r.status_int in (201, 409), r.text
            elif op in ("ag_add", "ag_remove"):
                gid = rnd.choice(ags)
                addr = f"10.{rnd.randrange(200)}.{rnd.randrange(4)}.0/24"
                have = api.get(f"/v2.0/address-groups/{gid}",
                               status=200).data["address_group"]["addresses"]
                if op == "ag_remove" and have:
                    addr = rnd.choice(have)
                api.put(f"/v2.0/address-groups/{gid}/{op[3:]}_addresses",
                        {"addresses": [addr]})
            elif op == "restate":
                # 409 while a port is in it
                r = api.put(f"/v2.0/security-groups/{lone}", {"security_group": {
                    "stateful": rnd.random() < .5}})
                assert r.status_int in (200, 409), r.text
            elif op == "rule":
                # Ingress from either group (a remote group) or to a port.
                tcp = 1000 + rnd.randrange(1000)
                rule = rnd.choice([{"remote_group_id": default_group(api)},
                                   {"remote_group_id": web},
                                   {"protocol": "tcp", "port_range_min": tcp,
                                    "port_range_max": tcp}])
                r = api.post("/v2.0/security-group-rules", {"security_group_rule": dict(
                    security_group_id=rnd.choice([default_group(api), web, lone]),
                    direction="ingress", ethertype="IPv4", **rule)})
                assert r.status_int in (201, 409), r.text  # 409: exists already
        reply = state(api, HOST_A, since=rev, timeout=0, features=features)
        if reply["full"]:
            view = wire.view_from_dict(reply["view"])
            engine.update(view)
        else:
            delta = wire.delta_from_dict(reply["delta"])
            view = wire.apply_delta(view, delta)
            engine.apply(delta)
        rev = reply["revision"]
        want = wire.view_from_dict(state(api, HOST_A)["view"])
        assert canon(view) == canon(want), f"step {step}: {ops}"
        assert engine.flows() == compile_flows(want, engine.alloc), f"step {step}: {ops}"


def test_partial_group_updates(api):
    """With features=group_rules, a rule change sends that group's rules
    (not its member addresses), a local port joining a group sends the
    port and the membership it causes, and a group whose standing changes
    (newly named as a remote group, no longer named, no longer local) is
    sent again whole: each delta applied gives the full view."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    net = api.network()
    api.subnet(net["id"], "10.9.0.0/24")
    dflt = default_group(api)
    web = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                   status=201).data["security_group"]["id"]
    p1 = bound_port(api, net["id"], HOST_A, security_groups=[web])
    p2 = bound_port(api, net["id"], HOST_A)  # default group
    for _ in range(3):
        bound_port(api, net["id"], HOST_B)  # default group members
    first = state(api, HOST_A, features=PARTIAL)
    holder = {"view": wire.view_from_dict(first["view"]), "rev": first["revision"]}

    def step():
        reply = state(api, HOST_A, since=holder["rev"], features=PARTIAL)
        assert reply["full"] is False
        holder["view"] = wire.apply_delta(holder["view"], wire.delta_from_dict(reply["delta"]))
        holder["rev"] = reply["revision"]
        want = wire.view_from_dict(state(api, HOST_A)["view"])
        assert canon(holder["view"]) == canon(want)
        return reply["delta"]

    # A rule of the default group (local, named by its own rules): its rules only.
    rule = api.post("/v2.0/security-group-rules", {"security_group_rule": dict(
        security_group_id=dflt, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=22, port_range_max=22)}, status=201).data["security_group_rule"]
    d = step()
    assert [g["security_group_id"] for g in d["group_rules"]] == [dflt]
    assert any(r["id"] == rule["id"] for r in d["group_rules"][0]["rules"])
    assert all(not g["member_ips"] for g in d["security_groups"])
    assert sorted(d["groups_kept"]) == sorted([dflt, web])
    # A rule naming web: web is named now (sent whole, with its members)...
    rule = api.post("/v2.0/security-group-rules", {"security_group_rule": dict(
        security_group_id=dflt, direction="ingress", ethertype="IPv4",
        remote_group_id=web)}, status=201).data["security_group_rule"]
    d = step()
    assert [g["member_ips"] for g in d["security_groups"] if g["id"] == web] == [
        [p1["fixed_ips"][0]["ip_address"]]]
    # ... and no more: sent whole again, without members.
    api.delete(f"/v2.0/security-group-rules/{rule['id']}", status=204)
    d = step()
    assert [g["member_ips"] for g in d["security_groups"] if g["id"] == web] == [[]]
    # web names the default group; p2 moves from the default group to web:
    # the default group is no longer local (its rules no longer shown).
    api.post("/v2.0/security-group-rules", {"security_group_rule": dict(
        security_group_id=web, direction="ingress", ethertype="IPv4",
        remote_group_id=dflt)}, status=201)
    step()
    api.put(f"/v2.0/ports/{p2['id']}", {"port": {"security_groups": [web]}}, admin=True,
            status=200)
    d = step()
    assert [g["rules"] for g in d["security_groups"] if g["id"] == dflt] == [[]]
    # A new local port in web: the port and the membership change (groups
    # whose standing may have changed come again, but without members).
    p3 = bound_port(api, net["id"], HOST_A, security_groups=[web])
    d = step()
    assert [p["id"] for p in d["ports"]] == [p3["id"]]
    assert all(not g["member_ips"] for g in d["security_groups"])
    # An older agent gets whole groups.
    api.put(f"/v2.0/ports/{p3['id']}", {"port": {"security_groups": [dflt]}}, admin=True,
            status=200)
    old = state(api, HOST_A, since=holder["rev"], features=WHOLE)["delta"]
    assert old["groups_complete"] is True and "groups_kept" not in old
    step()


def sharing(api, cidr):
    """HOST_A and HOST_B registered, each with a port on one network."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    net = api.network()
    api.subnet(net["id"], cidr)
    bound_port(api, net["id"], HOST_A)
    bound_port(api, net["id"], HOST_B)
    return net


def test_tunnel_ip_change_reaches_peers(api):
    """A host that re-registers with a new tunnel IP: the hosts sharing a
    network with it get the new address in a delta."""
    sharing(api, "10.9.0.0/24")
    register(api, HOST_C, "192.0.2.3")
    first = state(api, HOST_A)
    assert {h["name"]: h["tunnel_ip"] for h in first["view"]["remote_hosts"]} == \
        {HOST_B: "192.0.2.2"}
    # Heartbeats (not a restart) that carry a new address.
    for host, ip in ((HOST_B, "192.0.2.20"), (HOST_C, "192.0.2.30")):
        api.post("/agent-api/v1/agents", {"host": host, "tunnel_ip": ip, "configurations": {
            "tunnel_types": ["vxlan"], "bridge_mappings": {}}}, status=200)
    reply = state(api, HOST_A, since=first["revision"], timeout=0)
    assert not reply["full"]
    view = wire.apply_delta(wire.view_from_dict(first["view"]),
                            wire.delta_from_dict(reply["delta"]))
    assert {h.name: h.tunnel_ip for h in view.remote_hosts} == {HOST_B: "192.0.2.20"}


def test_change_table_is_pruned_and_sequence_keeps_growing(api):
    """Old change rows are deleted (the newest ``kept`` stay); the sequence
    goes on from where it was (SQLite would reuse a deleted highest rowid),
    and long-polls keep working."""
    import sqlalchemy as sa
    from quantum_ovs.db.changefeed import ChangeFeed
    from quantum_ovs.db import models

    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    api.subnet(net["id"], "10.8.0.0/22")
    feed = ChangeFeed(api.db, kept=1)
    assert feed.kept == ChangeFeed.MIN_KEPT
    for _ in range(20):
        bound_port(api, net["id"], HOST_A)

    def seqs():
        with api.db.reader() as s:
            return s.execute(sa.select(sa.func.min(models.Change.seq),
                                       sa.func.max(models.Change.seq),
                                       sa.func.count())).one()
    lo, hi, count = seqs()
    feed.kept = 5  # below the floor a server would use, to see it work
    feed.refresh()
    assert feed.prune() == count - 5
    assert seqs() == (hi - 4, hi, 5)
    assert feed.prune() == 0  # nothing new
    port = bound_port(api, net["id"], HOST_A)
    assert seqs()[0] == hi - 4 and seqs()[1] > hi
    feed.stop()
    first = state(api, HOST_A)
    assert port["id"] in {p["id"] for p in first["view"]["ports"]}
    later = bound_port(api, net["id"], HOST_A)
    reply = state(api, HOST_A, since=first["revision"], timeout=5)
    assert [p["id"] for p in reply["delta"]["ports"]] == [later["id"]]


def test_remote_group_membership_follows_port_group_changes(api):
    """A host whose rules name a remote group learns when a port on another
    network (and host) joins or leaves that group, or changes its address."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")

    def group(name):
        return api.post("/v2.0/security-groups", {"security_group": {"name": name}},
                        status=201).data["security_group"]
    web, db_group, other = group("web"), group("db"), group("other")
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": web["id"], "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": db_group["id"]}}, status=201)
    net_a, net_b = api.network(), api.network()
    sub_a = api.subnet(net_a["id"], "10.21.0.0/24")
    sub_b = api.subnet(net_b["id"], "10.22.0.0/24")
    assert sub_a and sub_b
    bound_port(api, net_a["id"], HOST_A, security_groups=[web["id"]])
    member = bound_port(api, net_b["id"], HOST_B, security_groups=[db_group["id"]])
    ip = member["fixed_ips"][0]["ip_address"]

    first = state(api, HOST_A)
    view = wire.view_from_dict(first["view"])
    rev = first["revision"]

    def members():
        return {g.id: g.member_ips for g in view.security_groups}.get(db_group["id"])

    def follow():
        nonlocal view, rev
        reply = state(api, HOST_A, since=rev, timeout=0)
        view = (wire.view_from_dict(reply["view"]) if reply["full"] else
                wire.apply_delta(view, wire.delta_from_dict(reply["delta"])))
        rev = reply["revision"]
        want = wire.view_from_dict(state(api, HOST_A)["view"])
        assert canon(view) == canon(want)
        return reply

    assert members() == {ip}
    # The port leaves the remote group.
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"security_groups": [other["id"]]}},
            admin=True, status=200)
    reply = follow()
    assert members() == frozenset()
    # Sent as a membership change, not as the group's whole member list.
    assert reply["delta"]["security_groups"] == []
    assert [(x["security_group_id"], x["addresses"], x["members"])
            for x in reply["delta"]["group_members"]] == [(db_group["id"], [ip], [])]
    # ... comes back with a new address.
    api.put(f"/v2.0/ports/{member['id']}", {"port": {
        "security_groups": [db_group["id"]],
        "fixed_ips": [{"subnet_id": sub_b["id"], "ip_address": "10.22.0.99"}]}},
        admin=True, status=200)
    follow()
    assert members() == {"10.22.0.99"}


def test_agent_restart_wakes_no_other_host(api):
    """Re-registering after a restart with the same tunnel IP concerns no
    other host (with 10,000 agents, a rolling restart would otherwise wake
    every agent once per restarted one); a new address does."""
    sharing(api, "10.23.0.0/24")
    rev = state(api, HOST_B)["revision"]
    register(api, HOST_A, "192.0.2.1")  # started, same address
    t0 = time.monotonic()
    reply = state(api, HOST_B, since=rev, timeout=1)
    assert time.monotonic() - t0 >= 0.9 and reply["delta"]["remote_hosts"] == []
    register(api, HOST_A, "192.0.2.11")
    reply = state(api, HOST_B, since=reply["revision"], timeout=5)
    assert [(h["name"], h["tunnel_ip"]) for h in reply["delta"]["remote_hosts"]] == \
        [(HOST_A, "192.0.2.11")]


def _follow(api, host, first):
    """(the host's view after the next delta from ``first``, its full view)."""
    reply = state(api, host, since=first["revision"], timeout=2)
    view = wire.apply_delta(wire.view_from_dict(first["view"]),
                            wire.delta_from_dict(reply["delta"]))
    return canon(view), canon(wire.view_from_dict(state(api, host)["view"]))


def _group(api, name):
    return api.post("/v2.0/security-groups", {"security_group": {"name": name}},
                    status=201).data["security_group"]["id"]


@pytest.mark.parametrize("then", ["leaves", "deleted"])
def test_groups_follow_a_port_that_moves_away_and_changes(api, then):
    """A port moves to another host and, before its old host polls, leaves
    its group or goes: the old host drops the group."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_C, "192.0.2.3")
    g = _group(api, "g")
    net = api.network()
    api.subnet(net["id"], "10.31.0.0/24")
    bound_port(api, net["id"], HOST_C)  # HOST_C keeps the network
    p = bound_port(api, net["id"], HOST_C, security_groups=[g])
    first = state(api, HOST_C)
    assert g in {x["id"] for x in first["view"]["security_groups"]}
    api.put(f"/v2.0/ports/{p['id']}", {"port": {"binding:host_id": HOST_A}},
            admin=True, status=200)
    if then == "leaves":
        api.put(f"/v2.0/ports/{p['id']}", {"port": {"security_groups": []}},
                admin=True, status=200)
    else:
        api.delete(f"/v2.0/ports/{p['id']}", admin=True, status=204)
    got, want = _follow(api, HOST_C, first)
    assert g not in {x.id for x in want.security_groups}
    assert got == want


def test_deleting_the_rule_that_names_a_remote_group_drops_it(api):
    register(api, HOST_A, "192.0.2.1")
    web, db_group = _group(api, "web"), _group(api, "db")
    rule = api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": web, "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": db_group}}, status=201).data["security_group_rule"]
    net = api.network()
    api.subnet(net["id"], "10.32.0.0/24")
    bound_port(api, net["id"], HOST_A, security_groups=[web])
    first = state(api, HOST_A)
    assert db_group in {x["id"] for x in first["view"]["security_groups"]}
    api.delete(f"/v2.0/security-group-rules/{rule['id']}", status=204)
    got, want = _follow(api, HOST_A, first)
    assert db_group not in {x.id for x in want.security_groups}
    assert got == want


def test_members_of_a_group_no_rule_names_are_not_sent(api):
    """The full view has member addresses only for groups that rules name
    as remote groups; deltas agree."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    plain = _group(api, "plain")  # egress rules only
    n1, n2 = api.network(), api.network()
    api.subnet(n1["id"], "10.33.0.0/24")
    api.subnet(n2["id"], "10.34.0.0/24")
    bound_port(api, n1["id"], HOST_A, security_groups=[plain])
    first = state(api, HOST_A)
    bound_port(api, n2["id"], HOST_B, security_groups=[plain])
    got, want = _follow(api, HOST_A, first)
    assert got == want


def test_a_peer_without_tunnel_ip_is_removed(api):
    sharing(api, "10.35.0.0/24")
    first = state(api, HOST_A)
    api.post("/agent-api/v1/agents", {"host": HOST_B, "tunnel_ip": None, "configurations": {
        "tunnel_types": [], "bridge_mappings": {}}, "started": True}, status=200)
    got, want = _follow(api, HOST_A, first)
    assert want.remote_hosts == () and got == want


def test_no_poke_is_lost_whatever_the_interleaving(api):
    """Every poke leaves a wake-up pending until the feed drains it, also
    one landing while the feed thread is draining an earlier one."""
    import select
    from quantum_ovs.db.changefeed import ChangeFeed

    feed = ChangeFeed(api.db)  # not started: this test plays its thread
    try:
        def pending():
            return bool(select.select([feed._wake_r], [], [], 0)[0])
        feed.poke()
        feed.poke()  # while the first is pending
        feed._wake_r.recv(4096)  # the feed thread drains both
        assert not pending()
        feed.poke()
        assert pending()
    finally:
        feed.stop()


def test_an_agent_without_membership_deltas_gets_whole_groups(api):
    """An agent that does not say it applies group_members (one older than
    them, during a rolling upgrade) gets the group with its members."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    web, db_group = _group(api, "web"), _group(api, "db")
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": web, "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": db_group}}, status=201)
    n1, n2 = api.network(), api.network()
    api.subnet(n1["id"], "10.36.0.0/24")
    api.subnet(n2["id"], "10.37.0.0/24")
    bound_port(api, n1["id"], HOST_A, security_groups=[web])
    first = state(api, HOST_A, features="")
    member = bound_port(api, n2["id"], HOST_B, security_groups=[db_group])
    old = state(api, HOST_A, since=first["revision"], timeout=2, features="")
    new = state(api, HOST_A, since=first["revision"], timeout=2)
    assert old["delta"]["group_members"] == []
    sent = {g["id"]: g["member_ips"] for g in old["delta"]["security_groups"]}
    assert sent[db_group] == [member["fixed_ips"][0]["ip_address"]]
    assert new["delta"]["security_groups"] == [] and new["delta"]["group_members"]


def test_a_burst_larger_than_a_page_is_read_in_one_refresh(api):
    from quantum_ovs.db.changefeed import ChangeFeed

    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    api.subnet(net["id"], "10.38.0.0/24")
    feed = ChangeFeed(api.db)  # not started: refreshed by hand
    try:
        feed.PAGE = 3
        for _ in range(5):
            bound_port(api, net["id"], HOST_A)
        feed.refresh()
        with api.db.reader() as s:
            import sqlalchemy as sa
            from quantum_ovs.db import models
            newest = s.execute(sa.select(sa.func.max(models.Change.seq))).scalar()
        assert feed.latest == newest and len(feed.items) >= 10
    finally:
        feed.stop()


def test_deleting_a_subnet_updates_its_dhcp_ports_for_agents(api):
    """A DHCP port loses its address on a deleted subnet: hosts holding the
    network learn it (the port's delta), like the API shows it."""
    register(api, HOST_A, "192.0.2.1")
    net = api.network()
    keep = api.subnet(net["id"], "10.39.0.0/24")
    gone = api.subnet(net["id"], "10.40.0.0/24")
    bound_port(api, net["id"], HOST_A, fixed_ips=[{"subnet_id": keep["id"]}])
    dhcp = bound_port(api, net["id"], HOST_A, device_owner="network:dhcp",
                      fixed_ips=[{"subnet_id": keep["id"]}, {"subnet_id": gone["id"]}])
    first = state(api, HOST_A)
    api.delete(f"/v2.0/subnets/{gone['id']}", status=204)
    after = api.get(f"/v2.0/ports/{dhcp['id']}", admin=True, status=200).data["port"]
    assert [ip["subnet_id"] for ip in after["fixed_ips"]] == [keep["id"]]
    got, want = _follow(api, HOST_A, first)
    assert got == want
    port = {p.id: p for p in got.ports}[dhcp["id"]]
    assert [ip.subnet_id for ip in port.fixed_ips] == [keep["id"]]


def _group_naming_itself(api, cidr):
    """A group "web" whose rule admits its own members, a port of HOST_A in
    it, and a member on HOST_B (a network with ``cidr``): (web, the member)."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    web = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                   status=201).data["security_group"]
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": web["id"], "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": web["id"]}}, status=201)
    net = api.network()
    api.subnet(net["id"], cidr)
    bound_port(api, net["id"], HOST_A, security_groups=[web["id"]])
    return web, bound_port(api, net["id"], HOST_B, security_groups=[web["id"]])


def test_an_address_pair_of_a_lone_address_is_one_member_with_the_fixed_ip(api):
    """An allowed address pair 10.x.y.z/32 (or /128) of a port's own fixed IP
    is the same member as the fixed IP: the views and the deltas spell it
    once, so the compiler makes one flow of it (two spellings made the same
    flow twice: a CompileError that stopped every change on the hosts of
    the group's rules). Dropping the pair leaves the member (the fixed IP
    still holds it); a pair of another lone address comes and goes."""
    web, member = _group_naming_itself(api, "10.24.0.0/24")
    ip = member["fixed_ips"][0]["ip_address"]
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"allowed_address_pairs": [
        {"ip_address": ip + "/32"}, {"ip_address": "10.24.0.77/32"}]}}, status=200)
    agent = Follower(api, HOST_A)  # (Engine.from_view raised CompileError)

    def members():
        return agent.group(web["id"]).member_ips

    follow = agent.step
    assert ip in members() and "10.24.0.77" in members()
    assert not [a for a in members() if a.endswith("/32")]
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"allowed_address_pairs": []}},
            status=200)
    follow()
    assert ip in members() and "10.24.0.77" not in members()
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"allowed_address_pairs": [
        {"ip_address": ip + "/32"}]}}, status=200)
    follow()
    assert ip in members()


def test_a_whole_family_address_pair_is_a_member_by_its_mac(api):
    """An allowed address pair 0.0.0.0/0 (or ::/0, or any address with /0)
    makes its port a member known by the pair's MAC (Neutron bug 1867119):
    its address would have made every rule naming the group admit every
    source.  Views and deltas spell it ``0.0.0.0/0@<mac>``; the compiled
    clause matches the MAC, not every address."""
    from quantum_ovs.compiler import pipeline
    web, member = _group_naming_itself(api, "10.25.0.0/24")
    mac = member["mac_address"]
    pairs = [{"ip_address": "10.9.8.7/0"},
             {"ip_address": "::/0", "mac_address": "FA:16:3E:01:02:03"}]
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"allowed_address_pairs": pairs}},
            status=200)
    agent = Follower(api, HOST_A)

    def members():
        return agent.group(web["id"]).member_ips

    follow = agent.step
    whole = {f"0.0.0.0/0@{mac}", "::/0@fa:16:3e:01:02:03"}
    assert whole <= members()
    assert not {"0.0.0.0/0", "::/0"} & members()
    # (the address clauses of the ingress ACL: each names an address or a MAC;
    # the pair's address made one of "every IPv4 source")
    ingress = [f for f in agent.engine.flows() if f.table == pipeline.INGRESS_ACL
               and any(type(a).__name__ == "Conjunction" for a in f.actions)]
    assert ingress and not [f for f in ingress
                            if {x.name for x in f.match} == {"eth_type"}]
    assert any(f.match.get("eth_src") is not None and f.match.get("eth_src").value == mac
               for f in ingress)
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"allowed_address_pairs": pairs[1:]}},
            status=200)
    follow()
    assert f"0.0.0.0/0@{mac}" not in members() and "::/0@fa:16:3e:01:02:03" in members()
    api.put(f"/v2.0/ports/{member['id']}", {"port": {"allowed_address_pairs": pairs}},
            status=200)
    follow()
    assert whole <= members()


@pytest.mark.parametrize("features", ["group_members,group_rules", "group_members", ""])
def test_stateless_group_local_here_remote_there(api, features):
    """A stateless group local on one host (its statefulness in the view)
    and only a remote group on another (stateful: True there): ports
    joining, leaving, moving; deltas equal full views, and the engine a
    full compile (written by the review of session 20's commits)."""
    register(api, HOST_A, "192.0.2.1")
    register(api, HOST_B, "192.0.2.2")
    web = api.post("/v2.0/security-groups", {"security_group": {"name": "web"}},
                   status=201).data["security_group"]["id"]
    lone = api.post("/v2.0/security-groups", {"security_group": {
        "name": "lone", "stateful": False}}, status=201).data["security_group"]["id"]
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": web, "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": lone}}, status=201)
    api.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": lone, "direction": "ingress", "ethertype": "IPv4",
        "remote_group_id": web}}, status=201)
    net = api.network()
    api.subnet(net["id"], "10.44.0.0/24")
    a_web = bound_port(api, net["id"], HOST_A, security_groups=[web])
    bound_port(api, net["id"], HOST_B, security_groups=[lone])
    agent = Follower(api, HOST_A, features)

    def step(what):
        return {g.id: g.stateful for g in agent.step(what).security_groups}

    # a new port of HOST_A in the stateless group
    a_sl = bound_port(api, net["id"], HOST_A, security_groups=[lone])
    assert step("port added to lone")[lone] is False
    # HOST_A's web port joins lone too (web and lone both local)
    api.put(f"/v2.0/ports/{a_sl['id']}", {"port": {"security_groups": []}},
            admin=True, status=200)
    assert step("last local port leaves lone")[lone] is True
    api.put(f"/v2.0/ports/{a_sl['id']}", {"port": {"security_groups": [lone]}},
            admin=True, status=200)
    assert step("back in lone")[lone] is False
    api.delete(f"/v2.0/ports/{a_sl['id']}", admin=True, status=204)
    assert step("port deleted")[lone] is True
    # web's port moves to the stateless group (web still local? no: only remote)
    api.put(f"/v2.0/ports/{a_web['id']}", {"port": {"security_groups": [lone]}},
            admin=True, status=200)
    got = step("web port to lone")
    assert got[lone] is False
    api.put(f"/v2.0/ports/{a_web['id']}", {"port": {"security_groups": [web]}},
            admin=True, status=200)
    assert step("and back")[lone] is True
    # the port moves to HOST_B and back
    api.put(f"/v2.0/ports/{a_web['id']}", {"port": {"security_groups": [lone],
                                                     "binding:host_id": HOST_B}},
            admin=True, status=200)
    step("moved away in lone")
    api.put(f"/v2.0/ports/{a_web['id']}", {"port": {"binding:host_id": HOST_A}},
            admin=True, status=200)
    assert step("moved back in lone")[lone] is False
