"""Who is asking: project, user, roles and token scope of one request.

``Context`` is an oslo.context ``RequestContext``: oslo.log's formatter
reads the request id, user and project of the context bound to the
running thread (``bind()``) into every log line of the request
(``[req-<id> <user> <project> ...]``).  The request id is the one
oslo.middleware's ``RequestId`` made for the request and returned in
``X-OpenStack-Request-Id``.

``is_admin`` is not read from the roles: the application's policy decides
it with its ``context_is_admin`` rule when it builds the context
(``Policy.context``).  A Context built by hand is not an admin unless
told so (``Context.admin()`` for the server's own internal calls).
"""

from oslo_context import context as oslo_context


class Context(oslo_context.RequestContext):
    def __init__(self, project_id=None, user_id=None, roles=frozenset(), request_id=None,
                 system_scope=None, domain_id=None, is_admin=False, policy_state=None,
                 global_request_id=None, **kwargs):
        # Bound to the thread only when asked (bind()): the server's own
        # contexts (Context.admin()) never take over a request's log lines.
        self._bindable = False
        super().__init__(user_id=user_id, project_id=project_id, domain_id=domain_id,
                         is_admin=is_admin, request_id=request_id,
                         system_scope=system_scope, global_request_id=global_request_id,
                         overwrite=False, **kwargs)
        self._bindable = True
        self.roles = frozenset(r.strip().lower() for r in roles if r and r.strip())
        # The service role (``service_api``, decided by the policy like
        # is_admin): as in neutron-lib, its queries are not kept to its own
        # project; the policy rules say what it may do with what it sees.
        self.is_service_role = False
        # The policy's per-request state (rules loaded, decisions made).
        self.policy_state = policy_state
        self._creds = None

    def update_store(self):
        if self._bindable:
            super().update_store()

    def bind(self):
        """Make this the running thread's context: its log lines say so."""
        self.update_store()
        return self

    @property
    def tenant_id(self):
        return self.project_id

    @property
    def creds(self):
        """The credentials policy checks read (oslo.policy's names)."""
        if self._creds is None:
            self._creds = {
                "project_id": self.project_id, "tenant_id": self.project_id,
                "user_id": self.user_id, "roles": sorted(self.roles),
                "system_scope": self.system_scope, "domain_id": self.domain_id}
        return self._creds

    def __repr__(self):
        return (f"Context(project_id={self.project_id!r}, user_id={self.user_id!r}, "
                f"roles={sorted(self.roles)!r}, request_id={self.request_id!r}, "
                f"is_admin={self.is_admin!r})")

    @classmethod
    def admin(cls):
        """The server acting for itself (not from a request)."""
        return cls(project_id=None, roles=frozenset(["admin"]), is_admin=True)
