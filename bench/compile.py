"""Flow compiler benchmark: full compile, incremental changes, growth.

Synthetic but realistic host views (quantum_ovs.compiler.synth): 1,000
local ports in 100 networks, 10,000 remote ports on 100 remote hosts, 50
security groups of 5 rules each, about half of them remote-group rules,
groups of up to 1,000 members.  A routed topology: 100 routers of 10
subnets each (1,000 networks, one local and 10 remote ports each, so
every router is compiled here), timed as a full compile and as an
interface attached to / detached from a router (plus an extra route).
External connectivity: 1,000 floating IPs on 1,000 local ports behind 10
routers with gateways (a full compile; one associated / disassociated).
Prints human-readable lines on stderr and one JSON line on stdout.
Timings are medians of several runs; keep runs short, the machine is
shared (--quick for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import dataclasses

from quantum_ovs.compiler import cookies
from quantum_ovs.compiler.engine import Engine
from quantum_ovs.compiler.synth import (
    add_external,
    make_large_view,
    make_port,
    make_router_interface,
)
from quantum_ovs.model import Chassis, Delta, GroupMembers, HostRoute, Rule, SecurityGroup


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_us(samples):
    return round(statistics.median(samples) * 1e6, 1)


def full_compile(view, runs):
    times, cpu = [], []
    n = 0
    for _ in range(runs):
        c0 = time.process_time()
        dt, e = timed(lambda: Engine.from_view(view))
        cpu.append(time.process_time() - c0)
        times.append(dt)
        n = len(e)
    return n, statistics.median(times), statistics.median(cpu), e


def delta(e: Engine, **changes) -> Delta:
    """One model change, as the agent hands it to the engine (built before
    the clock starts: the timings are the engine's)."""
    return Delta(revision=e.revision, **changes)


def incremental(e: Engine, runs: int) -> dict:
    out = {}
    groups = {g.id: g for g in e.view().security_groups}
    # add / remove one local port (its VIF already plugged) in a busy group
    p = make_port(5, 200, e.host, ("sg-0", "sg-49"))
    ch = e.chassis()
    e.set_chassis(Chassis(ch.vif_ofports + ((p.id, 60000),), ch.tunnel_ofports,
                          ch.physnet_ofports))
    add, rem, add_n, rem_n = [], [], 0, 0
    plug, unplug = delta(e, ports=(p,)), delta(e, removed_ports=(p.id,))
    for _ in range(runs):
        dt, d = timed(lambda: e.apply(plug))
        add.append(dt)
        add_n = len(d)
        dt, d = timed(lambda: e.apply(unplug))
        rem.append(dt)
        rem_n = len(d)
    out.update(incr_port_add_us=median_us(add), incr_port_add_diff=add_n,
               incr_port_remove_us=median_us(rem), incr_port_remove_diff=rem_n)
    # one member more in the largest group (referenced by remote-group rules)
    gid = max(groups, key=lambda g: len(groups[g].member_ips))
    size = len(groups[gid].member_ips)
    add, n = [], 0
    for i in range(runs):
        ip = frozenset({f"10.250.{i // 250}.{i % 250 + 1}"})
        join = delta(e, group_members=(GroupMembers(gid, ip, ip),))
        dt, d = timed(lambda: e.apply(join))
        add.append(dt)
        n = len(d)
        e.apply(delta(e, group_members=(GroupMembers(gid, ip),)))
    out.update(incr_member_add_us=median_us(add), incr_member_add_diff=n,
               member_group_size=size)
    # one rule more: a plain rule, then a rule referencing a group not yet
    # referenced by its security group (every member flow gains a conjunction)
    for key, rule in (
        ("incr_rule_add", Rule("bench-8080", "sg-0", "ingress", "IPv4", 6, 8080, 8080)),
        ("incr_remote_rule_add", Rule("bench-rg", "sg-0", "ingress", "IPv4", 6, 9000, 9000,
                                      remote_group_id=gid)),
    ):
        add, n = [], 0
        g = e.groups["sg-0"]
        with_rule = delta(e, security_groups=(SecurityGroup(g.id, g.rules + (rule,),
                                                            g.member_ips),))
        without = delta(e, security_groups=(g,))
        for _ in range(runs):
            dt, d = timed(lambda: e.apply(with_rule))
            add.append(dt)
            n = len(d)
            e.apply(without)
        out[key + "_us"] = median_us(add)
        out[key + "_diff"] = n
    return out


def routed(scale: int, runs: int, incr_runs: int) -> dict:
    """100 routers x 10 subnets (10 unrouted networks more, for attaching)."""
    n_routers = 100 // scale
    nets = n_routers * 10
    view = make_large_view(local_ports=nets + 10, networks=nets + 10,
                           remote_ports=10 * (nets + 10), routers=n_routers)
    # make_large_view splits the networks evenly: give the 10 spare ones back
    rts = tuple(dataclasses.replace(r, interfaces=tuple(
        i for i in r.interfaces if int(i.network_id.split("-")[1]) < nets))
        for r in view.routers)
    view = view.replace(routers=rts)
    flows, wall, cpu, e = full_compile(view, runs)
    n_router_flows = sum(1 for f in e.flows() if cookies.kind_of(f.cookie) == cookies.KIND_ROUTER)
    log(f"routed: {n_routers} routers x 10 subnets, {len(view.ports)} ports "
        f"({len(view.local_ports())} local): {flows} flows ({n_router_flows} router) in "
        f"{wall:.3f} s (cpu {cpu:.3f} s)")
    out = {"router_flows": flows, "router_owned_flows": n_router_flows,
           "router_full_compile_s": round(wall, 4), "router_full_compile_cpu_s": round(cpu, 4),
           "routers": n_routers, "router_ports": len(view.ports)}
    r = e.routers["router-0"]
    attached = dataclasses.replace(r, interfaces=r.interfaces + (make_router_interface(nets),))
    attach, detach = delta(e, routers=(attached,)), delta(e, routers=(r,))
    add, rem, add_cpu, add_n, rem_n = [], [], [], 0, 0
    for _ in range(incr_runs):
        c0 = time.process_time()
        dt, d = timed(lambda: e.apply(attach))
        add_cpu.append(time.process_time() - c0)
        add.append(dt)
        add_n = len(d)
        dt, d = timed(lambda: e.apply(detach))
        rem.append(dt)
        rem_n = len(d)
    with_route = delta(e, routers=(dataclasses.replace(
        r, routes=(HostRoute("172.16.0.0/16", "10.0.0.20"),)),))
    route = []
    for _ in range(incr_runs):
        dt, d = timed(lambda: e.apply(with_route))
        route.append(dt)
        e.apply(detach)
    out.update(router_interface_add_us=median_us(add), router_interface_add_diff=add_n,
               router_interface_add_cpu_us=median_us(add_cpu),
               router_interface_remove_us=median_us(rem), router_interface_remove_diff=rem_n,
               router_route_add_us=median_us(route))
    log("routed incremental:", {k: v for k, v in out.items() if k.startswith("router_i")
                                or k.startswith("router_route")})
    return out


def floating_ips(scale: int, runs: int, incr_runs: int) -> dict:
    """1,000 floating IPs (1,000 local ports on 100 networks behind 10
    routers with gateways): a full compile, the flows one FIP costs, and
    associating / disassociating one."""
    n = 1000 // scale
    base = make_large_view(local_ports=n, networks=max(1, n // 10), remote_ports=n,
                           routers=max(1, n // 100))
    view = add_external(base, fips=n, forwardings=False)
    plain = add_external(base, fips=0, forwardings=False)
    n_fips = sum(len(r.floating_ips) for r in view.routers)
    flows, wall, cpu, e = full_compile(view, runs)
    flows0, wall0, _, _ = full_compile(plain, runs)
    per_fip = sum(1 for f in e.flows() if cookies.kind_of(f.cookie) == cookies.KIND_FLOATING_IP)
    log(f"floating IPs: {n_fips} FIPs, {flows} flows in {wall:.3f} s (cpu {cpu:.3f} s); "
        f"without FIPs {flows0} flows in {wall0:.3f} s")
    r = next(r for r in e.routers.values() if r.floating_ips)
    f = r.floating_ips[0]
    without = delta(e, routers=(dataclasses.replace(r, floating_ips=r.floating_ips[1:]),))
    with_ = delta(e, routers=(r,))
    add, rem, add_n = [], [], 0
    for _ in range(incr_runs):
        dt, _d = timed(lambda: e.apply(without))
        rem.append(dt)
        dt, d = timed(lambda: e.apply(with_))
        add.append(dt)
        add_n = len(d)
    out = {"fip_count": n_fips, "fip_compile_s": round(wall, 4),
           "fip_compile_cpu_s": round(cpu, 4), "fip_compile_without_s": round(wall0, 4),
           "fip_flows": flows, "fip_flows_per_fip": round(per_fip / max(1, n_fips), 2),
           "fip_associate_us": median_us(add), "fip_associate_diff": add_n,
           "fip_disassociate_us": median_us(rem), "fip_id": f.id}
    log("floating IPs incremental:", {k: v for k, v in out.items() if "associate" in k})
    out.pop("fip_id")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="full-compile runs (median)")
    ap.add_argument("--incr-runs", type=int, default=21, help="incremental runs (median)")
    ap.add_argument("--quick", action="store_true", help="smaller views, fewer runs")
    args = ap.parse_args(argv)
    scale = 10 if args.quick else 1
    runs = 1 if args.quick else args.runs

    view = make_large_view(local_ports=1000 // scale, networks=100 // scale,
                           remote_ports=10000 // scale)
    flows, wall, cpu, engine = full_compile(view, runs)
    log(f"full compile: {flows} flows in {wall:.3f} s (cpu {cpu:.3f} s), "
        f"{flows / wall:,.0f} flows/s")
    result = {
        "flows": flows,
        "full_compile_s": round(wall, 4),
        "full_compile_cpu_s": round(cpu, 4),
        "flows_per_s": round(flows / wall),
        "local_ports": 1000 // scale,
        "remote_ports": 10000 // scale,
    }
    result.update(incremental(engine, args.incr_runs))
    log("incremental:", {k: v for k, v in result.items() if k.startswith(("incr", "member"))})
    del engine

    growth = []
    for n in ((10, 100, 1000) if args.quick else (100, 1000, 10000)):
        v = make_large_view(local_ports=n, networks=max(1, n // 10), remote_ports=n,
                            remote_hosts=100)
        f, wall, cpu, _ = full_compile(v, 1)
        growth.append({"local_ports": n, "remote_ports": n, "flows": f,
                       "compile_s": round(wall, 4), "cpu_s": round(cpu, 4),
                       "us_per_flow": round(cpu / f * 1e6, 2)})
        log(f"growth: {n} local + {n} remote ports: {f} flows, {wall:.3f} s")
    result["growth"] = growth
    result.update(routed(scale, runs, args.incr_runs))
    result.update(floating_ips(scale, runs, args.incr_runs))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
