"""The metadata service in ``make demo`` (tools/demo.py calls these).

    md = DemoMetadata(ovs_netns)     # a nova-metadata stand-in, started
    ini += md.agent_ini()            # the agent's [metadata] section
    ...boot the instances...
    md.show(booted, say)             # each instance asks 169.254.169.254

``show`` registers every booted instance with the stand-in (uuid, the
demo's project), gives each namespace the on-link route to
169.254.169.254 that DHCP hands (option 121) subnets without a router on
their gateway (the demo's dhclient script installs option 3 alone), fetches
``/openstack/latest/meta_data.json`` with curl and checks that each got
its own uuid: vm-a and vm-c have the same address on two networks.
``stop`` stops the stand-in and removes the proxy's namespace (the agent
keeps it across its own restarts).
"""

from __future__ import annotations

import json
import subprocess
import time

from quantum_ovs.testing.nova_metadata import NovaMetadata

SECRET = "demo-metadata-secret"


class DemoMetadata:
    def __init__(self, ovs_netns: str, namespace: str = "qovs-meta-demo"):
        self.ovs_netns = ovs_netns
        self.namespace = namespace
        self.nova = NovaMetadata(SECRET).start()

    def agent_ini(self) -> str:
        return (f"[metadata]\nenable_metadata_proxy = true\n"
                f"nova_metadata_host = {self.nova.host}\nnova_metadata_port = {self.nova.port}\n"
                f"metadata_proxy_shared_secret = {SECRET}\nnova_metadata_timeout = 2\n"
                f"metadata_namespace = {self.namespace}\n"
                f"integration_bridge_netns = {self.ovs_netns}\n")

    def fetch(self, ns: str, path: str = "/openstack/latest/meta_data.json",
              timeout: float = 3.0):
        out = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-m", str(timeout),
                              "-w", "\n%{http_code}", f"http://169.254.169.254{path}"],
                             capture_output=True, text=True, timeout=timeout + 10)
        body, _, code = out.stdout.rpartition("\n")
        return int(code or 0), body

    def show(self, booted, say, project: str = "demo") -> dict:
        """``booted``: tools/demo.py's instances (name, ns, ip, instance)."""
        for vm in booted:
            self.nova.add_instance(vm["instance"]["uuid"], project, vm["name"],
                                   user_data=f"#cloud-config\nhostname: {vm['name']}\n")
            subprocess.run(["ip", "netns", "exec", vm["ns"], "ip", "route", "replace",
                            "169.254.169.254", "dev", "eth0"], check=True)
        times = {}
        for vm in booted:
            t0 = time.monotonic()
            status, body = 0, ""
            while time.monotonic() - t0 < 15:
                status, body = self.fetch(vm["ns"])
                if status == 200:
                    break
                time.sleep(0.3)
            if status != 200:
                raise SystemExit(f"{vm['name']}: metadata answered {status}: {body[:200]}")
            meta = json.loads(body)
            if meta["uuid"] != vm["instance"]["uuid"]:
                raise SystemExit(f"{vm['name']} got another instance's metadata: {meta}")
            t1 = time.monotonic()
            self.fetch(vm["ns"])
            times[vm["name"]] = time.monotonic() - t1
            say(f"metadata       {vm['name']:<6} {vm['ip']:<12} -> uuid {meta['uuid'][:8]}… "
                f"name {meta['name']} (signed for nova; GET by curl "
                f"{times[vm['name']] * 1000:.0f} ms)")
        say("metadata       one proxy for the host, no namespace per network: "
            "each instance is known by its switch port")
        return times

    def stop(self) -> None:
        self.nova.stop()
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
