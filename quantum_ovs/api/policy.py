"""The enforcer: oslo.policy with the defaults of the API definitions.

Each application builds its own ``Policy`` (``Policy(conf, rules)``): an
``oslo_policy.policy.Enforcer`` with the base rules
(quantum_ovs.policy_rules), the core's and the given rules (the
``POLICY_RULES`` of the enabled definitions) registered in code.  An
operator overrides any of them in the file named by ``[oslo_policy]
policy_file``; quantum_ovs.policy gathers every rule for oslo.policy's
tools.

Checking one rule on many targets (a listing) is memoized per request on
the target values the rule actually read, so a page of 1,000 rows of the
same owner costs one evaluation per rule.
"""

import operator
import re

from oslo_config import cfg
from oslo_policy import policy as oslo_policy

from quantum_ovs import exceptions
from quantum_ovs.api.definitions import core
from quantum_ovs.context import Context
from quantum_ovs.policy_rules import BASE_RULES, FieldCheck

# ------------------------------------------------------------- options
OPTS = [
    cfg.BoolOpt("enforce_scope", default=False,
                help="Refuse tokens whose scope (system, domain) is not one a rule "
                     "allows. Off: every token is taken as project-scoped, as Neutron "
                     "did with oslo.policy's enforce_scope off. oslo.policy's other "
                     "options of this group apply as documented."),
]


def register_opts(conf):
    if "enforce_scope" not in conf.oslo_policy:
        conf.register_opts(OPTS, group="oslo_policy")


def list_opts():
    from oslo_policy import opts
    merged = [o for _g, group_opts in opts.list_opts() for o in group_opts]
    names = {o.name for o in merged}
    return [("oslo_policy", merged + [o for o in OPTS if o.name not in names])]


# ------------------------------------------------------------- enforcer
_MISSING = object()
_PARAM = re.compile(r"%\(([^)]*)\)")


class _Reads(dict):
    """A target that records which of its keys a check read."""

    __slots__ = ("read",)

    def __getitem__(self, key):
        self.read[key] = dict.get(self, key, _MISSING)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        val = dict.get(self, key, _MISSING)
        self.read[key] = val
        return default if val is _MISSING else val

    def __contains__(self, key):
        self.read[key] = dict.get(self, key, _MISSING)
        return dict.__contains__(self, key)


class _Decision:
    """One rule for one request: evaluates it on targets, remembering the
    result for the target values the evaluation read."""

    __slots__ = ("check", "creds", "enforcer", "name", "memo", "const")

    def __init__(self, check, creds, enforcer, name, memoizable):
        self.check = check
        self.creds = creds
        self.enforcer = enforcer
        self.name = name
        # {keys read: (their itemgetter, {their values: result})}; None:
        # not memoizable
        self.memo = {} if memoizable else None
        # The result when an evaluation read nothing of the target (the
        # caller is an admin, or the rule is admin-only): the same for all.
        self.const = False if check is None else None

    def __call__(self, target):
        if self.const is not None:
            return self.const
        memo = self.memo
        if memo is None:
            return bool(self.check(target, self.creds, self.enforcer, self.name))
        try:
            for keys, (values_of, results) in memo.items():
                try:
                    values = values_of(target)
                except KeyError:  # (a key the target lacks)
                    values = _values(keys, target)
                got = results.get(values)
                if got is not None:
                    return got
        except TypeError:  # an unhashable value: no memo for this target
            return bool(self.check(target, self.creds, self.enforcer, self.name))
        rec = _Reads(target)
        rec.read = {}
        result = bool(self.check(rec, self.creds, self.enforcer, self.name))
        keys = tuple(sorted(rec.read))
        if not keys:
            self.const = result
            return result
        try:
            if keys not in memo:
                memo[keys] = (operator.itemgetter(*keys), {})
            memo[keys][1][_values(keys, rec.read)] = result
        except TypeError:
            pass
        return result

    def reads_target(self, target):
        """Whether the rule's answer depends on the target, as its
        evaluation on ``target`` (one of the request's) tells: False when
        it read nothing of it (the caller is an admin, the rule admin-only
        or no one's), the answer then the same for every target."""
        self(target)
        return self.const is None

    def all(self, targets):
        """[self(t) for t in targets]: the answers remembered for the
        values the rule read looked up for all of them at once, the others
        evaluated one by one (a listing's rows mostly share one owner)."""
        if self.const is not None:
            return [self.const] * len(targets)
        memo = self.memo
        if not memo or len(memo) != 1:
            return list(map(self, targets))
        ((values_of, results),) = memo.values()
        try:
            got = list(map(results.get, map(values_of, targets)))
        except (KeyError, TypeError):  # (a key a target lacks, an unhashable value)
            return list(map(self, targets))
        if None in got:
            for i, answer in enumerate(got):
                if answer is None:
                    got[i] = self(targets[i])
        return got


def _values(keys, mapping):
    """The values of ``keys`` in ``mapping`` (_MISSING for one it lacks)
    as ``operator.itemgetter(*keys)`` gives them: a tuple, or the value
    itself for one key."""
    if len(keys) == 1:
        return mapping.get(keys[0], _MISSING)
    return tuple([mapping.get(k, _MISSING) for k in keys])


class Policy:
    """The policy of one application."""

    def __init__(self, conf, rules=()):
        """``rules``: the definitions' rules (the core's are added when
        not given)."""
        self.conf = conf
        self.enforcer = oslo_policy.Enforcer(conf)
        register_opts(conf)
        # Every default changed from Neutron's old ones; no need to say so
        # on each start.
        self.enforcer.suppress_default_change_warnings = True
        rules = list(rules)
        given = {r.name for r in rules}
        self.enforcer.register_defaults(
            list(BASE_RULES) + [r for r in core.POLICY_RULES if r.name not in given] + rules)
        self.enforcer.load_rules()

    # ------------------------------------------------------ contexts
    def context(self, project_id, user_id=None, roles=(), system_scope=None,
                domain_id=None, request_id=None, global_request_id=None):
        """The request's Context, ``is_admin`` decided by ``context_is_admin``
        and ``is_service_role`` by ``service_api``."""
        ctx = Context(project_id=project_id, user_id=user_id, roles=frozenset(roles),
                      system_scope=system_scope, domain_id=domain_id,
                      request_id=request_id, global_request_id=global_request_id)
        ctx.is_admin = self._decision("context_is_admin", ctx)(ctx.creds)
        ctx.is_service_role = self._decision("service_api", ctx)(ctx.creds)
        return ctx

    def _state(self, ctx):
        """Per-request state on the context: rules loaded once, decisions."""
        state = ctx.policy_state
        if state is None or state[0] is not self:
            self.enforcer.load_rules()
            state = ctx.policy_state = (self, {})
        return state[1]

    def _decision(self, action, ctx):
        decisions = self._state(ctx)
        d = decisions.get(action)
        if d is None:
            d = decisions[action] = self._make_decision(action, ctx)
        return d

    def _make_decision(self, action, ctx):
        e = self.enforcer
        creds = self._creds(ctx)
        try:
            check = e.rules[action]  # (the default rule when it has none)
        except KeyError:
            return _Decision(None, creds, e, action, False)
        registered = e.registered_rules.get(action)
        if registered is not None and not self._scope_ok(registered, creds):
            return _Decision(None, creds, e, action, False)
        return _Decision(check, creds, e, action, _memoizable(check, e.rules, set()))

    def _creds(self, ctx):
        creds = dict(ctx.creds)
        if not self.conf.oslo_policy.enforce_scope:
            creds.pop("system_scope", None)
            creds.pop("domain_id", None)
        elif creds.get("system_scope"):
            creds["system"] = creds["system_scope"]
        return creds

    @staticmethod
    def _scope_ok(registered, creds):
        if not registered.scope_types:
            return True
        scope = "system" if creds.get("system_scope") else \
            "domain" if creds.get("domain_id") else "project"
        return scope in registered.scope_types

    # ------------------------------------------------------ checks
    def check(self, action, ctx, target):
        return self._decision(action, ctx)(target)

    def checker(self, action, ctx):
        """A function target -> bool for many targets of one request."""
        return self._decision(action, ctx)

    def enforce(self, action, ctx, target):
        if not self.check(action, ctx, target):
            raise exceptions.PolicyNotAuthorized(action=action)

    def has(self, action):
        """Whether a rule of that name exists (registered or in the file)."""
        return action in self.enforcer.rules


def _memoizable(check, rules, seen):
    """Whether every check of the tree reads the target only through item
    access (so results may be remembered by the values read)."""
    if isinstance(check, (oslo_policy.AndCheck, oslo_policy.OrCheck)):
        return all(_memoizable(c, rules, seen) for c in check.rules)
    if isinstance(check, oslo_policy.NotCheck):
        return _memoizable(check.rule, rules, seen)
    if isinstance(check, oslo_policy.RuleCheck):
        if check.match in seen:
            return True
        seen.add(check.match)
        try:
            return _memoizable(rules[check.match], rules, seen)
        except KeyError:
            return True
    if isinstance(check, FieldCheck) or str(check) in ("@", "!"):
        return True
    return type(check).__name__ in ("RoleCheck", "GenericCheck")
