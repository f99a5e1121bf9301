"""IP address management: pools, availability ranges, allocation.

Free addresses of a subnet are kept as disjoint ranges keyed by a
32-digit hex form of the address (``ip_key``), so that taking the next
free address, taking a given one and giving one back each touch one or
two rows through the (subnet_id, first_key) index, however many addresses
are allocated.  Concurrent writers are caught by compare-and-set updates
(a lost race raises RetryRequest and the transaction is retried).

Lock order.  Every write transaction takes its locks in this order, and
never one of an earlier level while it holds one of a later level, so
that two transactions cannot wait for each other (on PostgreSQL a
deadlock costs a second of detection and a retry; 8 clients creating and
deleting ports and changing quotas got 503s and 10 to 40 s answers).
SQLite takes none of them: it lets one writer at a time in (BEGIN
IMMEDIATE).

  1. network rows: FOR UPDATE by network and subnet writes (and by an
     RBAC policy change of the network; FOR NO KEY UPDATE by a subnet
     update or delete, before its subnet: resources/subnets.py row), FOR KEY SHARE (MariaDB: LOCK IN
     SHARE MODE) by a port create, a router gateway and a floating IP
     create, taken before they read it (db/resource.hold: an un-sharing,
     a new SLAAC subnet, ``router:external`` false wait for them, or they
     for it and then read what it committed);
  1b. subnet pool rows: FOR UPDATE by a subnet create that takes its
     cidr from the pool, and by pool updates, which then lock the pool's
     address scope row (extensions/subnetpools.py);
  1c. rows a write uses and another may delete or un-share, held the
     same way: a port's security groups, a rule's remote address group,
     the router a floating IP or a port forwarding goes through;
  2. port rows: the port being updated or deleted (Collection.row, lock=True);
  3. subnet rows of the networks whose addresses change, in (created_at,
     id) order: FOR NO KEY UPDATE by allocation and release
     (lock_subnets, addresses.subnets_of), FOR UPDATE by subnet updates
     and deletes;
  4. IP availability range rows, only under the lock of their subnet
     (so their own order does not matter and they are never contended:
     their row locks and compare-and-set updates are a second line);
  5. quota locks, one advisory lock per (project, resource), last:
     a create counts its project's usage once, after all its work, just
     before it commits (extensions/quotas.py, Database.write's
     BEFORE_COMMIT hooks), several in key order; a quota update that
     checks the usage takes them before it writes the quota rows (which
     only quota updates lock).

Creators on one subnet wait for each other from their allocation to
their commit (the subnet lock), so ports are created first and get their
addresses last, and a port delete gives its addresses back last.
"""

import ipaddress

import sqlalchemy as sa

from quantum_ovs import exceptions
from quantum_ovs.db import models
from quantum_ovs.db.session import is_sqlite


def ip_key(ip):
    return format(int(ipaddress.ip_address(ip)), "032x")


def key_ip(key, version):
    n = int(key, 16)
    return str(ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n))


def _k(n):
    return format(n, "032x")


def default_pools(cidr, gateway_ip):
    """The whole subnet less the network, broadcast and gateway addresses."""
    net = ipaddress.ip_network(cidr)
    first = int(net.network_address)
    last = int(net.broadcast_address)
    if net.version == 4:
        if net.prefixlen <= 30:
            first += 1
            last -= 1
    else:
        if net.prefixlen <= 126:
            first += 1  # the subnet-router anycast address
    pools = [(first, last)] if first <= last else []
    if gateway_ip:
        gw = int(ipaddress.ip_address(gateway_ip))
        pools = _subtract(pools, gw)
    cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    return [(str(cls(a)), str(cls(b))) for a, b in pools]


def _subtract(ranges, n):
    out = []
    for a, b in ranges:
        if a <= n <= b:
            if a < n:
                out.append((a, n - 1))
            if n < b:
                out.append((n + 1, b))
        else:
            out.append((a, b))
    return out


def validate_gateway(cidr, gateway_ip):
    """As Neutron's _validate_subnet: of the subnet's IP version, and not
    its IPv4 network or broadcast address.  A gateway outside the CIDR is
    on link (check_gateway_invalid_in_subnet cannot judge it): DHCP gives
    the instances a host route to it (agent/responders/dhcp.py)."""
    net = ipaddress.ip_network(cidr)
    gw = ipaddress.ip_address(gateway_ip)
    if gw.version != net.version:
        raise exceptions.InvalidInput(
            error_message=f"gateway_ip '{gateway_ip}' does not match the ip_version "
                          f"'{net.version}'")
    if net.version == 4 and net.prefixlen <= 30 and gw in (
            net.network_address, net.broadcast_address):
        raise exceptions.InvalidInput(error_message="Gateway is not valid on subnet")


def validate_pools(cidr, pools, gateway_ip):
    """``pools`` is a list of {"start", "end"}; returns [(start, end)]."""
    net = ipaddress.ip_network(cidr)
    ranges = []
    for p in pools:
        start = ipaddress.ip_address(p["start"])
        end = ipaddress.ip_address(p["end"])
        text = f"{p['start']}-{p['end']}"
        if start.version != net.version or end.version != net.version or start > end:
            raise exceptions.InvalidAllocationPool(pool=text)
        if start not in net or end not in net:
            raise exceptions.OutOfBoundsAllocationPool(pool=text, subnet_cidr=cidr)
        if net.version == 4 and net.prefixlen <= 30 and (
                start == net.network_address or end == net.broadcast_address):
            # (out of the subnet's usable addresses, as Neutron's
            # validate_allocation_pools tells it)
            raise exceptions.OutOfBoundsAllocationPool(pool=text, subnet_cidr=cidr)
        if net.version == 6 and start == net.network_address:
            # The subnet-router anycast address (RFC 4291 2.6.1): Neutron's
            # validate_allocation_pools starts IPv6 pools at net.first + 1.
            raise exceptions.OutOfBoundsAllocationPool(pool=text, subnet_cidr=cidr)
        ranges.append((int(start), int(end), text))
    ranges.sort()
    for (a1, b1, t1), (a2, b2, t2) in zip(ranges, ranges[1:]):
        if a2 <= b1:
            raise exceptions.OverlappingAllocationPools(pool_1=t1, pool_2=t2,
                                                        subnet_cidr=cidr)
    if gateway_ip:
        gw = int(ipaddress.ip_address(gateway_ip))
        for a, b, t in ranges:
            if a <= gw <= b:
                raise exceptions.GatewayConflictWithAllocationPools(
                    ip_address=gateway_ip, pool=t)
    return [(p["start"], p["end"]) for p in
            sorted(pools, key=lambda p: int(ipaddress.ip_address(p["start"])))]


def set_pools(session, subnet, pools):
    """Replace a subnet's pools and rebuild its free ranges from them,
    less what is already allocated."""
    subnet.allocation_pools = [
        models.AllocationPool(first_ip=a, last_ip=b, first_key=ip_key(a), last_key=ip_key(b))
        for a, b in pools]
    session.execute(sa.delete(models.IPAvailabilityRange)
                    .where(models.IPAvailabilityRange.subnet_id == subnet.id))
    used = sorted(int(ipaddress.ip_address(ip)) for (ip,) in session.execute(
        sa.select(models.IPAllocation.ip_address)
        .where(models.IPAllocation.subnet_id == subnet.id)))
    free = []
    for a, b in pools:
        lo, hi = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))
        ranges = [(lo, hi)]
        for u in used:
            if lo <= u <= hi:
                ranges = _subtract(ranges, u)
        free.extend(ranges)
    session.add_all(models.IPAvailabilityRange(subnet_id=subnet.id, first_key=_k(a),
                                               last_key=_k(b)) for a, b in free)


def in_pools(subnet, ip):
    k = ip_key(ip)
    return any(p.first_key <= k <= p.last_key for p in subnet.allocation_pools)


R = models.IPAvailabilityRange


# How often take_specific locks again when the row it locked no longer
# holds the address (each time a concurrent split moved it) before the
# whole transaction is retried.
RELOCKS = 5


def _insert_range(session, subnet_id, first_key, last_key):
    """A new free range, written now by a statement like every other change
    of the ranges: the next read sees it even in a session that does not
    flush before it reads (a port bulk's allocation: see ports.py)."""
    session.execute(sa.insert(R).values(subnet_id=subnet_id, first_key=first_key,
                                        last_key=last_key))


def _cas_update(session, row, **values):
    res = session.execute(
        sa.update(R).where(R.id == row.id, R.first_key == row.first_key,
                           R.last_key == row.last_key).values(**values)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise exceptions.RetryRequest()


def _cas_delete(session, row):
    res = session.execute(
        sa.delete(R).where(R.id == row.id, R.first_key == row.first_key,
                           R.last_key == row.last_key)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise exceptions.RetryRequest()


def _locking(session, query):
    """Row-lock what we are about to change where the database can (SQLite
    serializes writers anyway): concurrent allocations then wait for each
    other instead of failing their compare-and-set and retrying."""
    if not is_sqlite(session):
        return query.with_for_update()
    return query


HELD = "qovs_subnet_locks"  # session.info: networks whose subnets we locked


def lock_subnets(session, network_ids):
    """Level 4 of the lock order: the subnets of these networks, before
    their free ranges are read or changed.  FOR NO KEY UPDATE: rows that
    only refer to a subnet (allocations) can still be inserted."""
    S = models.Subnet
    query = sa.select(S.id).where(S.network_id.in_(sorted(set(network_ids)))).order_by(
        S.created_at, S.id)
    if not is_sqlite(session) and not set(network_ids) <= session.info.get(HELD, set()):
        session.execute(locking_subnets(session, query, network_ids))


def locking_subnets(session, query, network_ids):
    """``query``, a select of the subnets of these networks in (created_at,
    id) order, taking their locks unless this transaction holds them."""
    held = session.info.setdefault(HELD, set())
    if is_sqlite(session) or set(network_ids) <= held:
        return query
    held.update(network_ids)
    return query.with_for_update(key_share=True)


def allocate_next(session, subnet_id, version):
    """Take the lowest free address of the subnet; None when full."""
    base = (sa.select(R.id, R.first_key, R.last_key).where(R.subnet_id == subnet_id)
            .order_by(R.first_key).limit(1))
    row = session.execute(_locking(session, base)).first()
    if row is None:
        # A locked row deleted by a concurrent transaction is skipped and
        # LIMIT 1 may then give nothing although free ranges remain.
        if session.execute(base).first() is not None:
            raise exceptions.RetryRequest()
        return None
    if row.first_key == row.last_key:
        _cas_delete(session, row)
    else:
        _cas_update(session, row, first_key=_k(int(row.first_key, 16) + 1))
    return key_ip(row.first_key, version)


def allocate_many(session, subnet_id, version, n):
    """Take the ``n`` lowest free addresses of the subnet (fewer when it
    runs out): what ``n`` calls of allocate_next give, in a few
    statements (a bulk create).  Each free range read is consumed whole
    or shrunk from below."""
    base = (sa.select(R.id, R.first_key, R.last_key).where(R.subnet_id == subnet_id)
            .order_by(R.first_key))
    # A range gives at least one address: n rows are always enough.
    rows = session.execute(_locking(session, base.limit(n))).all()
    out = []
    for row in rows:
        want = n - len(out)
        if want <= 0:
            break
        first, last = int(row.first_key, 16), int(row.last_key, 16)
        take = min(want, last - first + 1)
        out.extend(range(first, first + take))
        if first + take > last:
            _cas_delete(session, row)
        else:
            _cas_update(session, row, first_key=_k(first + take))
    if len(out) < n:
        # As in allocate_next: a locked row a concurrent writer deleted
        # is skipped; free ranges beyond what we read mean a retry.
        seen = rows[-1].first_key if rows else None
        rest = base.limit(1) if seen is None else base.where(R.first_key > seen).limit(1)
        if session.execute(rest).first() is not None:
            raise exceptions.RetryRequest()
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return [str(cls(x)) for x in out]


def take_specific(session, subnet_id, ip):
    """Remove ``ip`` from the free ranges.  Returns False when it is not
    free as of now: allocated, or outside every pool (the caller tells
    which, and must not guess: see Plugin._take_specific)."""
    k = ip_key(ip)
    covering = (sa.select(R.id, R.first_key, R.last_key)
                .where(R.subnet_id == subnet_id, R.first_key <= k)
                .order_by(R.first_key.desc()).limit(1))
    for _ in range(RELOCKS):
        row = session.execute(_locking(session, covering)).first()
        if row is not None and row.last_key >= k:
            break
        # On PostgreSQL the row we waited for is re-read as its writer
        # left it, but rows that writer inserted are not in our
        # statement's snapshot: after a concurrent split, the locked row
        # is the part below the address and the part holding it is new.
        # A new statement sees it; lock again.
        again = session.execute(covering).first()
        if again is None or again.last_key < k:
            return False
    else:
        raise exceptions.RetryRequest()
    n = int(k, 16)
    if row.first_key == row.last_key:
        _cas_delete(session, row)
    elif row.first_key == k:
        _cas_update(session, row, first_key=_k(n + 1))
    elif row.last_key == k:
        _cas_update(session, row, last_key=_k(n - 1))
    else:
        _cas_update(session, row, last_key=_k(n - 1))
        _insert_range(session, subnet_id, _k(n + 1), row.last_key)
    return True


def release(session, subnet, ip):
    """Give an address back to the free ranges (if it is in a pool)."""
    if not in_pools(subnet, ip):
        return
    k = ip_key(ip)
    n = int(k, 16)
    left = session.execute(
        sa.select(R.id, R.first_key, R.last_key)
        .where(R.subnet_id == subnet.id, R.first_key <= k)
        .order_by(R.first_key.desc()).limit(1)).first()
    if left is not None and left.last_key >= k:
        return  # already free
    right = session.execute(
        sa.select(R.id, R.first_key, R.last_key)
        .where(R.subnet_id == subnet.id, R.first_key == _k(n + 1))).first()
    # Merge only within one pool, so that ranges never bridge a gap
    # between pools.
    pool = next(p for p in subnet.allocation_pools if p.first_key <= k <= p.last_key)
    join_left = (left is not None and int(left.last_key, 16) == n - 1
                 and left.first_key >= pool.first_key)
    join_right = right is not None and right.last_key <= pool.last_key
    if join_left and join_right:
        _cas_update(session, left, last_key=right.last_key)
        _cas_delete(session, right)
    elif join_left:
        _cas_update(session, left, last_key=k)
    elif join_right:
        _cas_update(session, right, first_key=k)
    else:
        _insert_range(session, subnet.id, k, k)
