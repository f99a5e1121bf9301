"""Tables for the side-by-side report from the results file (JSON lines of
ours.py and ovn.py): per configuration, every phase with the ratio ours/OVN,
and the switch's own limit (ours.py's bundle phase) next to (b).

Adapted from ../shared/peers/ovn-side/report.py (the shared harness).

usage: report.py [results.jsonl]  -> markdown on stdout
"""

import collections
import json
import statistics
import sys

CONFIGS = [("10x100-b100-global", "(1) 10x100 = 1k ports, 100 local, global SG"),
           ("100x100-b1000-per-switch", "(2) 100x100 = 10k ports, 1000 local, per-switch SG"),
           ("100x100-b1000-global", "(3) 100x100 = 10k ports, 1000 local, global SG")]


def load(path):
    data = collections.defaultdict(lambda: collections.defaultdict(list))
    for line in open(path):
        r = json.loads(line)
        data[(r["system"], r["config"])][r["phase"]].append(r)
    return data


def fmt_s(v):
    if v is None:
        return "> 600 s"
    if v < 1:
        return f"{v * 1000:.0f} ms"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def ratio(a, b):
    if a is None and b is None:
        return "-"
    if b is None:
        return "< %.3f" % (a / 600.0)
    if a is None:
        return "n/a"
    r = a / b
    return f"{r:.2g}" if r < 1 else f"{r:.2f}"


def cpu_total(c):
    return round(sum(v for v in (c or {}).values()), 2) if c else None


def cpu_str(c):
    if not c:
        return "-"
    return " / ".join(f"{k} {v:.2f}" for k, v in c.items() if v >= 0.005) or "0"


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ovn-side/results.jsonl"
    data = load(path)
    out = []
    summary = []
    for cfg, title in CONFIGS:
        o, n = data.get(("ours", cfg)), data.get(("ovn", cfg))
        if not o or not n:
            continue
        out.append(f"### {title}\n")
        out.append(f"Runs: ours {o['start'][0]['t']} (load1 {o['start'][0]['load1']:.2f}), "
                   f"OVN {n['start'][0]['t']} (load1 {n['start'][0]['load1']:.2f}); "
                   f"ours total {o['end'][0]['total_s']} s, "
                   f"OVN total {n['end'][0]['total_s']} s.\n")
        out.append("| phase | quantum-ovs | OVN 23.03 | ratio ours/OVN "
                   "| flows in br-int ours / OVN | CPU-s ours (total; per process) "
                   "| CPU-s OVN (total; per process) |")
        out.append("|---|---|---|---|---|---|---|")
        ob, nb_, na = o["b"][0], n["b"][0], n["a"][0]
        out.append(f"| (b) agent / ovn-controller start on populated DB -> all local ports "
                   f"ACTIVE/up, all flows installed | {fmt_s(ob['wall_s'])} "
                   f"| {fmt_s(nb_['wall_s'])} "
                   f"| {ratio(ob['wall_s'], nb_['wall_s'])} | {ob.get('flows', '-'):,} / "
                   f"{nb_.get('flows', 0):,} | {cpu_total(ob.get('cpu_s'))}; "
                   f"{cpu_str(ob.get('cpu_s'))} "
                   f"| {cpu_total(nb_.get('cpu_s'))}; {cpu_str(nb_.get('cpu_s'))} |")
        ab = (na["wall_s"] + nb_["wall_s"]) if na.get("wall_s") and nb_.get("wall_s") else None
        out.append(f"| (a) OVN only: ovn-northd full compute (resume -> --wait=sb), before (b) "
                   f"| (none: the server builds the host view on request, inside (b)) "
                   f"| {fmt_s(na['wall_s'])} | - | {na.get('lflow_rows', 0):,} lflow rows "
                   f"| - | {cpu_total(na.get('cpu_s'))}; {cpu_str(na.get('cpu_s'))} |")
        out.append(f"| (a)+(b) OVN vs (b) ours | {fmt_s(ob['wall_s'])} | {fmt_s(ab)} "
                   f"| {ratio(ob['wall_s'], ab)} | | | |")
        srow = {"config": cfg, "b": (ob["wall_s"], nb_["wall_s"]),
                "flows": (ob.get("flows"), nb_.get("flows")),
                "cpu_b": (cpu_total(ob.get("cpu_s")), cpu_total(nb_.get("cpu_s")))}
        for ph, label in (("c1", "(c1) add 1 port (create -> applied; plug -> ACTIVE/up)"),
                          ("c2", "(c2) add plain ingress rule tcp dst N"),
                          ("c3", "(c3) add remote-group rule tcp 443 from the group")):
            ors, nrs = o.get(ph, []), n.get(ph, [])
            ow = [r.get("wall_s") for r in ors]
            nw = [r.get("wall_s") for r in nrs]
            oc = (o.get(ph + "-cpu") or [{}])[0].get("cpu_s")
            nc = (n.get(ph + "-cpu") or [{}])[0].get("cpu_s")
            reps = " ; ".join(fmt_s(v) for v in ow)
            nreps = " ; ".join(fmt_s(v) for v in nw)
            if ph == "c1":
                parts = lambda rs: " ; ".join(  # noqa: E731
                    f"{fmt_s(r.get('create_s'))} + {fmt_s(r.get('bind_s'))}" for r in rs)
                reps += "<br>(" + parts(ors) + ")"
                nreps += "<br>(" + parts(nrs) + ")"
            of = ors[-1].get("flows") if ors else None
            nf = nrs[-1].get("flows") if nrs else None
            out.append(f"| {label} x{len(ors)} | {reps} | {nreps} | median "
                       f"{ratio(med(ow), med(nw))} | {of if of is None else f'{of:,}'} / "
                       f"{nf if nf is None else f'{nf:,}'} | {cpu_total(oc)}; {cpu_str(oc)} "
                       f"| {cpu_total(nc)}; {cpu_str(nc)} |")
            srow[ph] = (med(ow), med(nw))
            srow["cpu_" + ph] = (cpu_total(oc), cpu_total(nc))
        od, nd = (o.get("d") or [{}])[0], (n.get("d") or [{}])[0]
        out.append(f"| (d) kill agent / ovn-controller, start again -> ready, all flows "
                   f"| {fmt_s(od.get('wall_s'))} "
                   f"(br-int never below {od.get('min_flows_during', 0):,}"
                   f" flows; {od.get('flow_mods')} flow-mods) | {fmt_s(nd.get('wall_s'))}"
                   f" (br-int down to {nd.get('min_flows_during', 0):,} flows) "
                   f"| {ratio(od.get('wall_s'), nd.get('wall_s'))} "
                   f"| {od.get('flows_after', 0):,} / "
                   f"{nd.get('flows_after', nd.get('flows_at_cap', 0)) or 0:,} "
                   f"| {cpu_total(od.get('cpu_s'))}; {cpu_str(od.get('cpu_s'))} "
                   f"| {cpu_total(nd.get('cpu_s'))}; {cpu_str(nd.get('cpu_s'))} |")
        srow["d"] = (od.get("wall_s"), nd.get("wall_s"))
        bu = (o.get("bundle") or [{}])[0]
        srow["bundle"] = (ob["wall_s"], bu.get("wall_s"))
        if bu:
            out.append(f"| bundle: the same flows by `ovs-ofctl -O OpenFlow14 --bundle add-flows` "
                       f"into an empty bridge (median of {len(bu['walls_s'])}) "
                       f"| {fmt_s(bu['wall_s'])} ({bu['flows']:,} flows) | | (b) ours / bundle "
                       f"{ratio(ob['wall_s'], bu['wall_s'])} | | | |")
        tl = ob.get("timeline")
        if tl:
            steps = ", ".join(f"{k} {v * 1000:.0f}" for k, v in tl.items())
            out.append(f"\n(b) ours, ms after the agent process started: {steps}.")
        srow["cpu_d"] = (cpu_total(od.get("cpu_s")), cpu_total(nd.get("cpu_s")))
        c0 = [r["wall_s"] for r in n.get("c0", [])]
        out.append("")
        out.append(f"OVN no-op `--wait=hv sync` (c0): {' ; '.join(fmt_s(v) for v in c0)}. "
                   f"Peak RSS MB after (d): ours {od.get('peak_rss_mb')}; "
                   f"OVN {nd.get('peak_rss_mb')}.")
        po = o["populate"][0]
        pn = n["populate"][0]
        out.append(f"Populate (not a measured phase): ours {po['ports']:,} ports "
                   f"through the REST API "
                   f"in {po['ports_s']} s (bulk creates of 200), plug {po['plug_s']} s; OVN NB "
                   f"{pn['nb_s']} s, plug {pn['plug_s']} s.\n")
        summary.append(srow)
    # summary of ratios
    out.append("### Summary: ratio ours/OVN (wall clock; < 1 = quantum-ovs faster)\n")
    out.append("| config | (b) start | (c1) add port | (c2) plain rule | (c3) remote-group rule "
               "| (d) restart | flows ours / OVN | (b) ours / bundle |")
    out.append("|---|---|---|---|---|---|---|---|")
    for s in summary:
        cells = [ratio(*s[k]) for k in ("b", "c1", "c2", "c3", "d")]
        fo, fn = s["flows"]
        out.append(f"| {s['config']} | " + " | ".join(cells) +
                   f" | {fo:,} / {fn:,} ({fo / fn:.3f}) | {ratio(*s['bundle'])} |")
    out.append("")
    out.append("### Summary: CPU-seconds ratio ours/OVN (all processes of each side, per phase)\n")
    out.append("| config | (b) start | (c1) 3 port adds | (c2) 3 rules | (c3) remote-group rule "
               "| (d) restart |")
    out.append("|---|---|---|---|---|---|")
    for s in summary:
        cells = [f"{ratio(*s['cpu_' + k])} ({s['cpu_' + k][0]} / {s['cpu_' + k][1]})"
                 for k in ("b", "c1", "c2", "c3", "d")]
        out.append(f"| {s['config']} | " + " | ".join(cells) + " |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
