"""Nova's network API for Quantum, over quantum-ovs's REST API.

    api = NetworkAPI("http://127.0.0.1:9696", token=None)   # noauth
    nw_info = api.allocate_for_instance(ctx, instance, requested_networks, host)

``ctx`` and ``instance`` may be objects or dicts: ``ctx.project_id``
(and ``ctx.auth_token`` when the server uses keystone); ``instance.uuid``,
``instance.project_id``, ``instance.availability_zone``.
``requested_networks`` is a list of dicts or (network_id, fixed_ip,
port_id) tuples; None means "the networks the project can use" (exactly
one, as nova requires).  Ports are made on the instance's behalf with
device_id = instance uuid, device_owner = compute:<az> and
binding:host_id = host.  If any step fails, every port this call created
is deleted and every adopted port is given back as it was.

An instance is confined to its project, as nova confines it: a network
it is given must be its project's own or shared with it (networks are
read as that project, so the server's policy decides what it sees; one
of another project is 404 NetworkNotFound, an external network not
shared is 403 ExternalNetworkAttachForbidden unless the context is an
admin's, as in nova, even the project's own), a port it is
given must be its project's (else PortNotUsable) and not another
device's (PortInUse), and its ports are those of its project whose
device_id is its uuid.  The admin role (the service's) is used only for
what needs it: a port's binding, reading ports' binding details.
"""

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request

LOG = logging.getLogger(__name__)


class NetworkError(Exception):
    """A request the server refused, with its NeutronError."""

    def __init__(self, status, type_, message):
        super().__init__(f"{status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.message = message


class NetworkAmbiguous(NetworkError):
    def __init__(self):
        super().__init__(409, "NetworkAmbiguous",
                         "Multiple possible networks found, use a Network ID to be more "
                         "specific.")


class PortInUse(NetworkError):
    def __init__(self, port_id):
        super().__init__(409, "PortInUse", f"Port {port_id} is still in use.")


class PortNotUsable(NetworkError):
    """A requested port of another project than the instance's."""

    def __init__(self, port_id, project_id):
        super().__init__(400, "PortNotUsable",
                         f"Port {port_id} is not usable by project {project_id}.")


class ExternalNetworkAttachForbidden(NetworkError):
    def __init__(self, network_id):
        super().__init__(403, "ExternalNetworkAttachForbidden",
                         f"External network {network_id} is not shared: only an "
                         f"admin may attach an instance to it.")


def _network_not_found(network_id):
    # What the server answers the project for a network it cannot see.
    return NetworkError(404, "NetworkNotFound", f"Network {network_id} could not be found.")


def _get(obj, name, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class NetworkAPI:
    def __init__(self, url, token=None, service_project="service", retries=5,
                 timeout=30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.service_project = service_project
        self.retries = retries
        self.timeout = timeout
        self._dns_integration = None  # the server advertises dns-integration

    # ------------------------------------------------------------ transport
    def _request(self, method, path, body=None, ctx=None, admin=True, project=None):
        """As the service (admin), or, admin=False, as ``project``: with
        noauth its X-Project-Id and no admin role; with keystone the
        user's token in ``ctx`` when there is one, else the service's
        (whose reads the callers check themselves)."""
        headers = {"Accept": "application/json"}
        user_token = _get(ctx, "auth_token") if ctx is not None else None
        token = (self.token or user_token) if admin else (user_token or self.token)
        if token:
            headers["X-Auth-Token"] = token
        if project is None and ctx is not None:
            project = _get(ctx, "project_id")
        headers["X-Project-Id"] = project or self.service_project
        headers["X-Roles"] = "admin" if admin else "member"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    err = json.loads(raw)["NeutronError"]
                except (ValueError, KeyError, TypeError):
                    err = {"type": "HTTPError", "message": raw.decode(errors="replace")}
                if e.code == 503 and attempt < self.retries:
                    time.sleep(min(2.0, 0.1 * 2 ** attempt))
                    continue
                raise NetworkError(e.code, err.get("type"), err.get("message")) from None
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as e:
                # Retry only what cannot have reached the server, or reads.
                reason = getattr(e, "reason", e)
                safe = method in ("GET", "DELETE", "PUT") or isinstance(
                    reason, ConnectionRefusedError)
                if attempt < self.retries and safe:
                    time.sleep(min(2.0, 0.1 * 2 ** attempt))
                    continue
                raise

    def _get_json(self, path, ctx=None):
        return self._request("GET", path, ctx=ctx)

    def _get_as(self, project, path, ctx=None):
        """A read as ``project`` (not admin)."""
        return self._request("GET", path, ctx=ctx, admin=False, project=project)

    # ------------------------------------------------------------ helpers
    def _requested(self, requested_networks):
        out = []
        for r in requested_networks or ():
            if isinstance(r, dict):
                out.append((r.get("network_id"), r.get("fixed_ip"), r.get("port_id")))
            else:
                r = tuple(r) + (None,) * (3 - len(r))
                out.append(r[:3])
        return out

    @staticmethod
    def _project(context, instance=None):
        project = _get(instance, "project_id") if instance is not None else None
        project = project or _get(context, "project_id")
        if not project:
            raise NetworkError(400, "InvalidInput", "the instance has no project")
        return project

    def _available_networks(self, context, project_id):
        q = urllib.parse.urlencode({"project_id": project_id})
        own = self._get_as(project_id, f"/v2.0/networks?{q}", context)["networks"]
        shared = self._get_as(project_id, "/v2.0/networks?shared=true", context)["networks"]
        nets = {n["id"]: n for n in own + shared
                if not n.get("router:external") and self._usable(n, project_id)}
        return list(nets.values())

    def _usable(self, net, project_id, rbac=False):
        """Whether ``net`` is ``project_id``'s own or shared with it.
        ``shared`` reads true for a project a network is shared with;
        read with the service's token it is the service's view, so
        ``rbac`` asks for a policy sharing it with the project."""
        if net.get("project_id", net.get("tenant_id")) == project_id or net.get("shared"):
            return True
        if not rbac:
            return False
        q = urllib.parse.urlencode({"object_type": "network", "object_id": net["id"],
                                    "action": "access_as_shared"})
        try:
            policies = self._get_json(f"/v2.0/rbac-policies?{q}")["rbac_policies"]
        except NetworkError as e:
            if e.status == 404:  # no RBAC policies here
                return False
            raise
        return any(p.get("target_tenant") in (project_id, "*") for p in policies)

    def _network(self, context, project_id, net_id):
        """The requested network, if the instance's project may use it."""
        net = self._get_as(project_id, f"/v2.0/networks/{urllib.parse.quote(str(net_id))}",
                           context)["network"]
        if net.get("router:external"):
            # As nova: an external network takes instances only when it is
            # shared (globally) or for an admin, even the project's own.
            if net.get("shared") or _get(context, "is_admin"):
                return net
            raise ExternalNetworkAttachForbidden(net_id)
        if self._usable(net, project_id, rbac=True):
            return net
        raise _network_not_found(net_id)

    def _port(self, project_id, port_id, uuid=None):
        """The requested port, if it is the instance's project's and no
        other device's (read as the service: its binding is given back
        as it was if the allocation fails)."""
        port = self._get_json(f"/v2.0/ports/{urllib.parse.quote(str(port_id))}")["port"]
        if port.get("project_id", port.get("tenant_id")) != project_id:
            raise PortNotUsable(port_id, project_id)
        if port.get("device_id") and (uuid is None or port["device_id"] != uuid):
            raise PortInUse(port_id)
        return port

    def validate_networks(self, context, requested_networks, num_instances=1):
        """How many instances the requested networks can serve (0 = none)."""
        project = self._project(context)
        reqs = self._requested(requested_networks)
        if not reqs:
            nets = self._available_networks(context, project)
            if len(nets) > 1:
                raise NetworkAmbiguous()
            return num_instances
        for net_id, fixed_ip, port_id in reqs:
            if port_id:
                self._port(project, port_id)
                if num_instances > 1:
                    raise NetworkError(400, "InvalidInput",
                                       "one port cannot serve several instances")
            else:
                self._network(context, project, net_id)
        return num_instances

    # ------------------------------------------------------------ allocate
    def allocate_for_instance(self, context, instance, requested_networks=None, host=None,
                              security_groups=None):
        uuid = _get(instance, "uuid")
        project = self._project(context, instance)
        az = _get(instance, "availability_zone") or "nova"
        reqs = self._requested(requested_networks)
        if not reqs:
            nets = self._available_networks(context, project)
            if len(nets) > 1:
                raise NetworkAmbiguous()
            reqs = [(n["id"], None, None) for n in nets]
        created, adopted = [], []
        binding = {"device_id": uuid, "device_owner": f"compute:{az}"}
        if host:
            binding["binding:host_id"] = host
        # dns-integration: as nova, the port is named after the instance's
        # hostname (a port the user named keeps its name).
        dns_name = self._dns_name(_get(instance, "hostname"))
        try:
            for net_id, fixed_ip, port_id in reqs:
                if port_id:
                    port = self._port(project, port_id, uuid)
                    keys = ("device_id", "device_owner", "binding:host_id")
                    update = dict(binding)
                    if dns_name and "dns_name" in port and not port["dns_name"]:
                        keys += ("dns_name",)
                        update["dns_name"] = dns_name
                    before = {k: port.get(k, "") for k in keys}
                    adopted.append((port_id, before))
                    self._request("PUT", f"/v2.0/ports/{port_id}", {"port": update})
                else:
                    self._network(context, project, net_id)
                    body = dict(binding, network_id=net_id, project_id=project)
                    if dns_name:
                        body["dns_name"] = dns_name
                    if fixed_ip:
                        body["fixed_ips"] = [{"ip_address": fixed_ip}]
                    if security_groups:
                        body["security_groups"] = list(security_groups)
                    port = self._request("POST", "/v2.0/ports", {"port": body})["port"]
                    created.append(port["id"])
            return self.get_instance_nw_info(context, instance)
        except Exception:
            self._rollback(created, adopted)
            raise

    def _dns_name(self, hostname):
        """The instance's hostname as a port's dns_name when the server
        has dns-integration and the hostname is a DNS label, else None."""
        if not hostname or not re.fullmatch(r"(?!-)[a-z0-9-]{1,63}(?<!-)", hostname.lower()):
            return None
        if self._dns_integration is None:
            aliases = {e.get("alias") for e in
                       self._get_json("/v2.0/extensions").get("extensions", ())}
            self._dns_integration = "dns-integration" in aliases
        return hostname.lower() if self._dns_integration else None

    def _rollback(self, created, adopted):
        for port_id in created:
            try:
                self._request("DELETE", f"/v2.0/ports/{port_id}")
            except NetworkError as e:
                if e.status != 404:
                    LOG.warning("could not delete port %s while rolling back: %s", port_id, e)
            except OSError as e:
                LOG.warning("could not delete port %s while rolling back: %s", port_id, e)
        for port_id, before in adopted:
            try:
                self._request("PUT", f"/v2.0/ports/{port_id}", {"port": before})
            except (NetworkError, OSError) as e:
                LOG.warning("could not restore port %s while rolling back: %s", port_id, e)

    def deallocate_for_instance(self, context, instance, requested_port_ids=()):
        """Delete the instance's ports; ports the user made are detached."""
        keep = set(requested_port_ids or ())
        for port in self._ports_of(context, instance):
            if port["id"] in keep:
                detach = {"device_id": "", "device_owner": "", "binding:host_id": ""}
                if port.get("dns_name"):
                    detach["dns_name"] = ""  # as nova: the name was the instance's
                self._request("PUT", f"/v2.0/ports/{port['id']}", {"port": detach})
                continue
            try:
                self._request("DELETE", f"/v2.0/ports/{port['id']}")
            except NetworkError as e:
                if e.status != 404:
                    raise

    def _ports_of(self, context, instance):
        """The instance's ports: its project's with its uuid as device_id
        (another project may name any device).  Read as the service, for
        their binding details."""
        q = urllib.parse.urlencode({"device_id": _get(instance, "uuid"),
                                    "project_id": self._project(context, instance)})
        return self._get_json(f"/v2.0/ports?{q}")["ports"]

    # ------------------------------------------------------------ nw info
    def _floating_ips(self, ports):
        """{(port id, fixed address): its floating IP addresses} (nova's
        _get_floating_ips_by_fixed_and_port); none without routers."""
        if not ports:
            return {}
        q = urllib.parse.urlencode([("port_id", p["id"]) for p in ports])
        try:
            fips = self._get_json(f"/v2.0/floatingips?{q}")["floatingips"]
        except NetworkError as e:
            if e.status != 404:  # (no floating IPs in this deployment)
                raise
            return {}
        out = {}
        for f in sorted(fips, key=lambda f: f["floating_ip_address"]):
            out.setdefault((f["port_id"], f["fixed_ip_address"]), []).append(
                f["floating_ip_address"])
        return out

    def get_instance_nw_info(self, context, instance):
        """The instance's network info: one dict per VIF, in nova's shape."""
        ports = sorted(self._ports_of(context, instance),
                       key=lambda p: p["created_at"] + p["id"])
        floating = self._floating_ips(ports)
        nets, subnets = {}, {}
        vifs = []
        for port in ports:
            net = nets.get(port["network_id"])
            if net is None:
                net = nets[port["network_id"]] = self._get_json(
                    f"/v2.0/networks/{port['network_id']}")["network"]
            sub_info = []
            by_subnet = {}
            for f in port["fixed_ips"]:
                by_subnet.setdefault(f["subnet_id"], []).append(f["ip_address"])
            for sid, ips in by_subnet.items():
                sub = subnets.get(sid)
                if sub is None:
                    sub = subnets[sid] = self._get_json(f"/v2.0/subnets/{sid}")["subnet"]
                sub_info.append({
                    "cidr": sub["cidr"], "version": sub["ip_version"],
                    "gateway": {"address": sub["gateway_ip"], "type": "gateway"},
                    "dns": [{"address": d, "type": "dns"} for d in sub["dns_nameservers"]],
                    "routes": [{"cidr": r["destination"],
                                "gateway": {"address": r["nexthop"], "type": "gateway"}}
                               for r in sub["host_routes"]],
                    "ips": [{"address": ip, "type": "fixed", "version": sub["ip_version"],
                             "floating_ips": [
                                 {"address": a, "type": "floating", "version": 4, "meta": {}}
                                 for a in floating.get((port["id"], ip), ())]}
                            for ip in ips],
                    "meta": {"dhcp_server": sub["gateway_ip"]} if sub["enable_dhcp"] else {},
                })
            details = port.get("binding:vif_details") or {}
            vifs.append({
                "id": port["id"], "address": port["mac_address"],
                "type": port.get("binding:vif_type", "unbound"), "details": details,
                "devname": ("tap" + port["id"])[:14], "ovs_interfaceid": port["id"],
                "vnic_type": port.get("binding:vnic_type", "normal"),
                "active": port["status"] == "ACTIVE", "qbh_params": None,
                "qbg_params": None, "preserve_on_delete": False,
                "network": {"id": net["id"], "label": net["name"],
                            "bridge": details.get("bridge_name", "br-int"),
                            "subnets": sub_info,
                            "meta": {"mtu": net["mtu"], "tenant_id": net["project_id"],
                                     "injected": False}},
            })
        return vifs
