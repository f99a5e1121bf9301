"""Extra DHCP options of ports (extra_dhcp_opt), answered by the hosts'
DHCPv4/DHCPv6 responders (agent/responders/dhcp_options.py says which
names they know).  A change is a port update: the hosts of the port's
network learn of it through the change log.

A port has at most ``[DEFAULT] max_extra_dhcp_opts_per_port`` options
(Neutron has no cap): every change of the port sends them all to its
hosts, and the agent keeps and encodes them for its DHCP replies.  One
past it, on a create (a bulk's too) or an update's result, is a 400 and
changes nothing."""

from oslo_config import cfg

from quantum_ovs import exceptions
from quantum_ovs.api import definitions
from quantum_ovs.api.definitions.extra_dhcp_opt import BLANK_ALLOWED, EXTRA_DHCP_OPTS
from quantum_ovs.db import models

DEFINITION = definitions.extra_dhcp_opt

OPTS = [("DEFAULT", [
    cfg.IntOpt("max_extra_dhcp_opts_per_port", default=64, min=0,
               help="Maximum number of extra DHCP options (extra_dhcp_opts) a port may "
                    "have; more is a 400. What Ironic and Tempest set is a handful; "
                    "each option is sent to the port's host with every change of the "
                    "port and answered in its DHCP replies."),
])]


def _wanted(opt):
    value = opt.get("opt_value")
    if value is None:
        return False
    return bool(value) or opt["opt_name"] in BLANK_ALLOWED


def _check_count(conf, count, before=0):
    exceptions.check_cap("A port", "extra DHCP options", conf.max_extra_dhcp_opts_per_port,
                         count, before)


def setup(plugin, conf):
    def on_create(s, ctx, port, a):
        opts = [o for o in a.get(EXTRA_DHCP_OPTS) or () if _wanted(o)]
        _check_count(conf, len(opts))
        port.extra_dhcp_opts = [
            models.ExtraDhcpOpt(opt_name=o["opt_name"], opt_value=o["opt_value"],
                                ip_version=o["ip_version"], order=i)
            for i, o in enumerate(opts)]

    def on_update(s, ctx, port, a):
        if EXTRA_DHCP_OPTS not in a:
            return
        rows = {(r.opt_name, r.ip_version): r for r in port.extra_dhcp_opts}
        before = len(rows)
        order = max((r.order for r in rows.values()), default=-1)
        for o in a[EXTRA_DHCP_OPTS] or ():
            key = (o["opt_name"], o["ip_version"])
            row = rows.get(key)
            if o.get("opt_value") is None:
                if row is not None:
                    port.extra_dhcp_opts.remove(row)
                    del rows[key]
            elif row is not None:
                if _wanted(o):
                    row.opt_value = o["opt_value"]
                else:
                    port.extra_dhcp_opts.remove(row)
                    del rows[key]
            elif _wanted(o):
                order += 1
                rows[key] = models.ExtraDhcpOpt(opt_name=key[0], opt_value=o["opt_value"],
                                                ip_version=key[1], order=order)
                port.extra_dhcp_opts.append(rows[key])
        _check_count(conf, len(rows), before)

    def extend_dict(port, d):
        opts = port.extra_dhcp_opts
        # (most ports have none: no comprehension, a call, for those)
        d[EXTRA_DHCP_OPTS] = [{"opt_name": r.opt_name, "opt_value": r.opt_value,
                               "ip_version": r.ip_version} for r in opts] if opts else []

    plugin.add_hook("ports", "create", on_create)
    plugin.add_hook("ports", "update", on_update)
    plugin.add_dict_extender("ports", extend_dict)
