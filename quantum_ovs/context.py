"""Who is asking: project, user and roles of one request."""

from dataclasses import dataclass, field


@dataclass
class Context:
    project_id: str | None
    user_id: str | None = None
    roles: frozenset = field(default_factory=frozenset)
    request_id: str | None = None

    def __post_init__(self):
        self.roles = frozenset(r.strip().lower() for r in self.roles if r and r.strip())

    @property
    def is_admin(self):
        return "admin" in self.roles

    @property
    def tenant_id(self):
        return self.project_id

    @classmethod
    def admin(cls):
        return cls(project_id=None, roles=frozenset(["admin"]))
