"""The database plugin: a handler per collection, one transaction per call.

Every public method runs in one transaction (retried on conflicts with
concurrent writers) and returns plain dicts in the API's shape.  Policy
is the controller's job; the handlers scope what a non-admin can see.
The handlers are db/resource.py's pattern (networks, subnets and ports
in db/resources/); what extensions may add is db/interface.py.
"""

from quantum_ovs import exceptions
from quantum_ovs.db import changelog, models, query, rowload
from quantum_ovs.db.interface import ExtensionPoints
from quantum_ovs.db.resource import check_tags
from quantum_ovs.db.resources.networks import Networks
from quantum_ovs.db.resources.ports import Ports
from quantum_ovs.db.resources.subnets import Subnets

# Collections listed as read-only rows (db/rowload.py): their dict
# builders and extenders read only columns and eagerly loaded relationships.
PLAIN_ROWS = frozenset({"networks", "subnets", "ports"})



class Plugin(ExtensionPoints):
    """CRUD of every registered collection.  ``conf``: oslo.config."""

    def __init__(self, db, conf):
        super().__init__(db, conf)
        for handler in (Networks, Subnets, Ports):
            self.register(handler(self))

    def model_of(self, collection):
        return self.collections[collection].model

    def not_found(self, collection, id_):
        return self.collections[collection].missing(id_)

    # ------------------------------------------------------------ writes
    def create(self, ctx, collection, items):
        h = self.collections[collection]
        for a in items:
            h.check(a)
        def txn(s):
            rows = h.create_all(s, ctx, items)
            return self._for_caller(s, ctx, h, rows)
        return self.db.write(txn)

    def update(self, ctx, collection, id_, a, revision=None):
        """``revision``: the revision_number the caller expects (If-Match),
        compared with the locked row: 412 when another write came first."""
        h = self.collections[collection]
        h.check(a)

        def txn(s):
            obj = _expect(h.row(s, ctx, id_, lock=True), revision)
            h.update_row(s, ctx, obj, a)
            return self._for_caller(s, ctx, h, [obj])[0]
        return self.db.write(txn)

    def delete(self, ctx, collection, id_, revision=None):
        h = self.collections[collection]
        self.db.write(lambda s: h.delete_row(
            s, ctx, _expect(h.row(s, ctx, id_, lock=True), revision)))

    def set_tags(self, ctx, collection, id_, tags):
        """The resource's tags become ``tags``; its revision moves only
        when they change (as a set: Neutron writes the difference)."""
        check_tags(collection, tags)
        tags = list(dict.fromkeys(tags))

        def txn(s):
            obj = self.row(s, ctx, collection, id_, lock=True)
            if {t.tag for t in obj.tags} != set(tags):
                obj.tags = [models.Tag(resource_id=obj.id, tag=t) for t in tags]
                changelog.bump(obj)
                s.flush()
            return [t.tag for t in obj.tags]
        return self.db.write(txn)

    def change_tag(self, ctx, collection, id_, tag, add):
        """One tag added (a no-op when there) or removed (TagNotFound when
        not), the others as they are in the write's transaction."""
        def txn(s):
            obj = self.row(s, ctx, collection, id_, lock=True)
            have = [t.tag for t in obj.tags]
            if add and tag not in have:
                check_tags(collection, have + [tag])  # (the per-resource limit)
                obj.tags.append(models.Tag(resource_id=obj.id, tag=tag))
            elif not add:
                if tag not in have:
                    raise exceptions.TagNotFound(tag=tag)
                obj.tags = [t for t in obj.tags if t.tag != tag]
            else:
                return
            changelog.bump(obj)
            s.flush()
        self.db.write(txn)

    # ------------------------------------------------------------ reads
    def get(self, ctx, collection, id_):
        with self.db.reader() as s:
            return self._for_caller(s, ctx, self.collections[collection],
                                    [self.row(s, ctx, collection, id_)])[0]

    def owner(self, ctx, collection, id_):
        """The project of the resource ``ctx`` sees (its not-found error
        otherwise): a child's policy target names its parent's owner. Its
        columns only, not its API dict (a security group's has every rule)."""
        with self.db.reader() as s:
            return self.row(s, ctx, collection, id_, bare=True).project_id

    def list(self, ctx, collection, filters=None, sorts=(), limit=None,
             marker=None, special_filters=None):
        """``filters``: attribute -> list of accepted values (OR);
        ``sorts``: [(attribute, ascending)]; ``marker``: an id."""
        h = self.collections[collection]
        with self.db.reader() as s:
            # Read-only rows (db/rowload.py) where the model allows:
            # the same attributes, without the ORM's bookkeeping.
            load = (lambda q: rowload.load(s, q, h.model)) \
                if collection in PLAIN_ROWS and rowload.supported(h.model) else None
            rows = query.list_query(s, h.model, h.visible(ctx), filters, sorts, limit,
                                    marker, special_filters,
                                    lambda attr, values: h.filter_for(ctx, attr, values),
                                    h.missing, load=load)
            return self._for_caller(s, ctx, h, rows)

    def _for_caller(self, s, ctx, h, rows):
        dicts = self.to_dicts(h.collection, rows)
        if ctx is not None and rows:
            h.for_caller(s, ctx, rows, dicts)
        return dicts

    def network_owner(self, net_id, ctx=None):
        """project_id, shared and external of a network, or None: what the
        policy checks of subnets and ports need, in one narrow query
        (``shared``: for ``ctx``'s project when given, see rbac)."""
        return self.network_owners([net_id], ctx).get(net_id)

    def network_owners(self, net_ids, ctx=None):
        """network_owner of several networks: {id: {...}} (missing ones
        left out)."""
        with self.db.reader() as s:
            return self.collections["networks"].owners(s, net_ids, ctx)


def _expect(obj, revision):
    """``obj``, when its revision_number is ``revision`` (None: any)."""
    have = getattr(obj, "revision_number", None)
    if revision is not None and have is not None and have != revision:
        raise exceptions.PreconditionFailed(
            reason=f"revision_number {have} does not match the "
                   f"expected {revision}")
    return obj
