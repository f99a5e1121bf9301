"""Who is asking: project, user, roles and token scope of one request.

``is_admin`` is not read from the roles: the application's policy decides
it with its ``context_is_admin`` rule when it builds the context
(``Policy.context``).  A Context built by hand is not an admin unless
told so (``Context.admin()`` for the server's own internal calls).
"""

from dataclasses import dataclass, field


@dataclass(eq=False)
class Context:
    project_id: str | None
    user_id: str | None = None
    roles: frozenset = field(default_factory=frozenset)
    request_id: str | None = None
    system_scope: str | None = None
    domain_id: str | None = None
    is_admin: bool = False
    # The policy's per-request state (rules loaded, decisions made).
    policy_state: object = field(default=None, repr=False)

    def __post_init__(self):
        self.roles = frozenset(r.strip().lower() for r in self.roles if r and r.strip())
        self._creds = None

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

    @classmethod
    def admin(cls):
        """The server acting for itself (not from a request)."""
        return cls(project_id=None, roles=frozenset(["admin"]), is_admin=True)
