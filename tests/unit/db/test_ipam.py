"""The availability ranges against a plain set model of free addresses."""

import ipaddress

import sqlalchemy as sa
from hypothesis import given, settings, strategies as st

from quantum_ovs.db import ipam, models
from quantum_ovs.db.session import Database


def test_default_pools():
    assert ipam.default_pools("10.0.0.0/24", "10.0.0.1") == [("10.0.0.2", "10.0.0.254")]
    assert ipam.default_pools("10.0.0.0/24", None) == [("10.0.0.1", "10.0.0.254")]
    assert ipam.default_pools("10.0.0.0/30", "10.0.0.1") == [("10.0.0.2", "10.0.0.2")]
    assert ipam.default_pools("10.0.0.0/31", None) == [("10.0.0.0", "10.0.0.1")]
    assert ipam.default_pools("2001:db8::/64", "2001:db8::1")[0][0] == "2001:db8::2"


def _free(session, subnet_id, version):
    rows = session.execute(sa.select(models.IPAvailabilityRange)
                           .where(models.IPAvailabilityRange.subnet_id == subnet_id)
                           .order_by(models.IPAvailabilityRange.first_key)).scalars().all()
    out = set()
    for r in rows:
        out.update(range(int(r.first_key, 16), int(r.last_key, 16) + 1))
    # ranges are disjoint and never adjacent within one pool
    return out, [(int(r.first_key, 16), int(r.last_key, 16)) for r in rows]


ops = st.lists(st.tuples(st.sampled_from(["next", "take", "release", "many"]),
                         st.integers(min_value=0, max_value=40)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(ops=ops)
def test_ranges_track_a_set_model(ops):
    db = Database("sqlite://")
    models.Base.metadata.create_all(db.engine)
    base = int(ipaddress.ip_address("10.0.0.0"))
    pools = [("10.0.0.2", "10.0.0.20"), ("10.0.0.25", "10.0.0.30")]
    model_free = set()
    for a, b in pools:
        model_free.update(range(int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b)) + 1))
    pooled = set(model_free)
    allocated = set()

    def txn(s):
        net = models.Network(id="n", project_id="p")
        sub = models.Subnet(id="s", project_id="p", network_id="n", cidr="10.0.0.0/26",
                            ip_version=4)
        s.add_all([net, sub])
        s.flush()
        ipam.set_pools(s, sub, pools)
    db.write(txn)
    for op, n in ops:
        ip = base + n

        def step(s):
            sub = s.get(models.Subnet, "s")
            if op == "next":
                got = ipam.allocate_next(s, "s", 4)
                want = min(model_free) if model_free else None
                assert (None if got is None else int(ipaddress.ip_address(got))) == want
                if want is not None:
                    model_free.discard(want)
                    allocated.add(want)
            elif op == "many":
                # a bulk's n lowest free addresses (fewer when it runs out)
                k = n % 9 + 1
                got = [int(ipaddress.ip_address(x)) for x in ipam.allocate_many(s, "s", 4, k)]
                assert got == sorted(model_free)[:k]
                model_free.difference_update(got)
                allocated.update(got)
            elif op == "take":
                ok = ipam.take_specific(s, "s", str(ipaddress.IPv4Address(ip)))
                assert ok == (ip in model_free)
                if ok:
                    model_free.discard(ip)
                    allocated.add(ip)
            elif ip in allocated:
                ipam.release(s, sub, str(ipaddress.IPv4Address(ip)))
                allocated.discard(ip)
                if ip in pooled:
                    model_free.add(ip)
            free, ranges = _free(s, "s", 4)
            assert free == model_free
            for (a1, b1), (a2, b2) in zip(ranges, ranges[1:]):
                assert b1 < a2
        db.write(step)
    db.dispose()
