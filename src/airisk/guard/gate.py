"""The action gate: a deterministic, model-free pre-execution check of an agent's tool calls.

``ActionGate.from_policy(...)`` validates and compiles a policy once (role -> tool sets, globs and
regexes, JSON-schema validators, detectors); ``gate.decide(action)`` then costs microseconds and
returns ALLOW / REVIEW / BLOCK with every matched rule id and a reason for each.

Order of checks: tool known (default deny) -> role/principal may use it -> session limits (rate,
call count) -> argument constraints and JSON schema -> kind-specific detectors and resource scopes
(shell, Python, SQL, HTTP, files, e-mail, payments) -> irreversible-action rule. The strictest
verdict wins (BLOCK > REVIEW > ALLOW).

Session state: the gate keeps one ``GateSession`` per ``Action.session_id`` (bounded LRU, thread
safe): timestamps of recent calls (rate limit), the call count, money spent by ALLOWed payments
(budget) and the last decisions (history). ``gate.session(id)`` exposes it, ``gate.reset_session``
clears it. Actions without a session id are judged against an empty session and not remembered.

Fail closed: an exception, a parse failure or a check running past ``check_timeout_ms`` yields the
policy's ``on_error`` verdict (BLOCK by default, REVIEW if configured), never ALLOW.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jsonschema

from airisk.errors import ConfigError
from airisk.guard.actions import SEVERITY, Action, Decision, combine
from airisk.guard.detectors.paths import GlobSet
from airisk.guard.detectors.python_code import PythonAnalyzer
from airisk.guard.detectors.scopes import CheckTimeout, Findings, ScopeChecker
from airisk.guard.detectors.secrets import find_secrets
from airisk.guard.detectors.shell import ShellAnalyzer
from airisk.guard.detectors.sql import SQLAnalyzer
from airisk.guard.policy import ArgConstraint, Policy, ToolSpec, compile_pattern, load_policy

KIND_ARGS: dict[str, tuple[str, ...]] = {
    "shell": ("command", "cmd", "commands", "script", "shell_command", "bash", "input", "code"),
    "python": ("code", "source", "script", "program", "python_code"),
    "sql": ("query", "sql", "statement", "sql_query"),
    "http": ("url", "uri", "endpoint", "link", "href", "website"),
    "file_read": ("path", "file_path", "filepath", "file", "filename", "file_name", "file_name_or_path", "source", "src"),
    "file_list": ("path", "directory", "dir", "folder", "root", "pattern"),
    "file_write": ("path", "file_path", "filepath", "file", "filename", "file_name", "file_name_or_path", "destination", "dest", "target"),
    "file_delete": ("path", "file_path", "filepath", "file", "filename", "file_name", "file_name_or_path", "directory", "target"),
    "email": ("body", "content", "message", "text", "subject"),
    "payment": (),
    "generic": (),
}
OUTBOUND_KINDS = frozenset({"http", "email", "generic", "file_write"})
# A BLOCK for one of these marks the session: later outbound or code actions need REVIEW.
TAINTING_RULES = frozenset({"scope.fs.read", "shell.exfiltration", "python.exfiltration", "secrets.outbound",
                            "shell.reverse_shell", "python.reverse_shell", "shell.download_exec", "python.exec_fetched",
                            "shell.obfuscated_exec", "python.obfuscated_exec", "shell.disable_logging", "shell.history_clear"})


@dataclass(slots=True)
class GateSession:
    """What the gate remembers about one agent session."""

    calls: deque = field(default_factory=deque)  # monotonic timestamps of recent calls (rate window)
    n_calls: int = 0
    spent: float = 0.0  # money in ALLOWed payments
    history: deque = field(default_factory=lambda: deque(maxlen=50))  # (tool, verdict, rule_ids)
    tainted: str | None = None  # why this session is suspect (it tried to reach credentials or exfiltrate)


@dataclass(slots=True)
class _RoleView:
    tools: frozenset
    read_only_sql: bool
    trusted_irreversible: bool
    payment_review_above: float | None
    label: str


class _CompiledConstraint:
    __slots__ = ("name", "c", "rx", "not_rx", "glob", "enum")

    def __init__(self, name: str, c: ArgConstraint):
        self.name, self.c = name, c
        self.rx = compile_pattern(c.pattern) if c.pattern else None  # RE2: linear time, no ReDoS
        self.not_rx = compile_pattern(c.not_pattern) if c.not_pattern else None
        self.glob = GlobSet(c.glob) if c.glob else None
        self.enum = frozenset(map(str, c.enum)) if c.enum is not None else None

    def check(self, tool: str, args: dict, out: Findings) -> None:
        c, rid = self.c, f"args.{tool}.{self.name}"
        if self.name not in args or args[self.name] is None:
            if c.required:
                out.add(rid, c.verdict, f"argument '{self.name}' is required")
            return
        val = args[self.name]
        if c.type:
            ok = {"string": isinstance(val, str), "number": isinstance(val, (int, float)) and not isinstance(val, bool),
                  "integer": isinstance(val, int) and not isinstance(val, bool), "boolean": isinstance(val, bool),
                  "array": isinstance(val, list), "object": isinstance(val, dict)}[c.type]
            if not ok:
                out.add(rid, c.verdict, f"argument '{self.name}' must be a {c.type}")
                return
        s = val if isinstance(val, str) else str(val)
        if self.rx is not None and not self.rx.fullmatch(s):
            out.add(rid, c.verdict, f"argument '{self.name}' does not match the allowed pattern")
        if self.not_rx is not None and self.not_rx.search(s):
            out.add(rid, c.verdict, f"argument '{self.name}' contains a forbidden pattern")
        if self.glob is not None and not self.glob.match(s):
            out.add(rid, c.verdict, f"argument '{self.name}' is outside the allowed globs")
        if self.enum is not None and s not in self.enum:
            out.add(rid, c.verdict, f"argument '{self.name}' must be one of {sorted(self.enum)}")
        if c.max_length is not None and len(s) > c.max_length:
            out.add(rid, c.verdict, f"argument '{self.name}' is longer than {c.max_length}")
        if c.min is not None or c.max is not None:
            try:
                x = float(val)
            except (TypeError, ValueError):
                out.add(rid, c.verdict, f"argument '{self.name}' must be a number")
                return
            if c.min is not None and x < c.min:
                out.add(rid, c.verdict, f"argument '{self.name}'={x:g} is below {c.min:g}")
            if c.max is not None and x > c.max:
                out.add(rid, c.verdict, f"argument '{self.name}'={x:g} is above {c.max:g}")


class _CompiledTool:
    __slots__ = ("name", "spec", "kind", "args", "constraints", "validator", "irreversible")

    def __init__(self, name: str, spec: ToolSpec, irreversible_globs: GlobSet):
        self.name, self.spec, self.kind = name, spec, spec.kind
        self.args = tuple(spec.args) or KIND_ARGS[spec.kind]
        self.constraints = tuple(_CompiledConstraint(n, c) for n, c in spec.constraints.items())
        self.validator = None
        if spec.json_schema is not None:
            try:
                cls = jsonschema.validators.validator_for(spec.json_schema)
                cls.check_schema(spec.json_schema)
            except jsonschema.SchemaError as e:
                raise ConfigError(f"tools.{name}.schema: invalid JSON schema: {e.message}") from None
            self.validator = cls(spec.json_schema)
        self.irreversible = spec.irreversible or irreversible_globs.match(name)


class ActionGate:
    """Compiled policy + per-session state. Thread safe; one instance per policy."""

    def __init__(self, policy: Policy | str | Path | dict, *, clock: Callable[[], float] = time.monotonic,
                 check_timeout_ms: float = 50.0, max_sessions: int = 100_000,
                 extra_checks: list[Callable[[Action, Findings], None]] | None = None):
        self.policy = load_policy(policy)
        p = self.policy
        self.clock = clock
        self.check_timeout_s = check_timeout_ms / 1000.0
        self.extra_checks = list(extra_checks or [])
        self.on_error = p.on_error
        self.scopes = ScopeChecker(p)
        self.shell = ShellAnalyzer(self.scopes, p.detectors.shell.verdict)
        self.python = PythonAnalyzer(self.scopes, self.shell, p.detectors.python.verdict)
        self.shell.python = self.python
        self.sql = SQLAnalyzer(self.scopes, p.detectors.sql.verdict)
        irrev = GlobSet(p.irreversible.tools, expand_paths=False)
        self.tools: dict[str, _CompiledTool] = {}
        self.lookup: dict[str, str] = {}
        for name, spec in p.tools.items():
            self.tools[name] = _CompiledTool(name, spec, irrev)
            for alias in (name, *spec.aliases):
                key = alias.lower()
                if key in self.lookup and self.lookup[key] != name:
                    raise ConfigError(f"tools.{name}: alias '{alias}' is already used by tool '{self.lookup[key]}'")
                self.lookup[key] = name
        self._role_tools = {r: self._expand_role(r, set()) for r in p.roles}
        self._views: dict[tuple, _RoleView | str] = {}
        self._sessions: OrderedDict[str, GateSession] = OrderedDict()
        self._analysis_memo: dict[tuple, tuple] = {}
        self._max_sessions = max_sessions
        self._lock = threading.Lock()
        lim = p.limits
        self._pay, self._sess, self._max_chars = lim.payment, lim.session, lim.max_argument_chars
        self._max_script = lim.max_script_chars

    # -- construction --
    @classmethod
    def from_policy(cls, spec: Policy | str | Path | dict, **kw: Any) -> "ActionGate":
        return cls(spec, **kw)

    @classmethod
    def default(cls, **kw: Any) -> "ActionGate":
        return cls("builtin:default", **kw)

    def _expand_role(self, role: str, seen: set) -> tuple[frozenset, frozenset]:
        if role in seen:
            raise ConfigError(f"roles.{role}: inheritance cycle")
        seen.add(role)
        spec = self.policy.roles[role]
        allow: set[str] = set()
        deny: set[str] = set()
        for parent in spec.inherits:
            pa, pd = self._expand_role(parent, seen)
            allow |= pa
            deny |= pd
        allow |= self._match_tools(spec.tools, f"roles.{role}.tools")
        deny |= self._match_tools(spec.deny_tools, f"roles.{role}.deny_tools")
        return frozenset(allow), frozenset(deny)

    def _match_tools(self, patterns: list[str], where: str) -> set[str]:
        out: set[str] = set()
        for pat in patterns:
            if any(ch in pat for ch in "*?["):
                g = GlobSet([pat], expand_paths=False)
                out |= {t for t in self.tools if g.match(t)}
            else:
                name = self.lookup.get(pat.lower())
                if name is None:
                    raise ConfigError(f"{where}: unknown tool '{pat}' (define it under tools:)")
                out.add(name)
        return out

    def _view(self, principal: str | None, role: str | None) -> _RoleView | str:
        key = (principal, role)
        v = self._views.get(key)
        if v is not None:
            return v
        p = self.policy
        roles: list[str]
        extra: set[str] = set()
        if principal is not None and principal in p.principals:
            ps = p.principals[principal]
            extra = self._match_tools(ps.tools, f"principals.{principal}.tools")
            if role is not None:
                if role not in ps.roles:
                    v = f"principal '{principal}' does not hold role '{role}'"
                    self._views[key] = v
                    return v
                roles = [role]
            else:
                roles = list(ps.roles)
        elif role is not None:
            roles = [role]
        elif p.default_role is not None:
            roles = [p.default_role]
        else:
            roles = []
        unknown = [r for r in roles if r not in p.roles]
        if unknown:
            v = f"unknown role '{unknown[0]}'"
        elif not roles and not extra:
            v = "no role: the action names no known principal or role and the policy has no default_role"
        else:
            allow, deny = set(extra), set()
            for r in roles:
                a, d = self._role_tools[r]
                allow |= a
                deny |= d
            specs = [p.roles[r] for r in roles]
            limits = [s.payment_review_above for s in specs if s.payment_review_above is not None]
            v = _RoleView(frozenset(allow - deny), any(s.read_only_sql for s in specs) and not any(not s.read_only_sql for s in specs),
                          any(s.trusted_irreversible for s in specs), max(limits) if limits else None,
                          "+".join(roles) or f"principal {principal}")
        if len(self._views) < 10_000:
            self._views[key] = v
        return v

    # -- sessions --
    def session(self, session_id: str) -> GateSession:
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                s = GateSession(history=deque(maxlen=self._sess.history))
                self._sessions[session_id] = s
                if len(self._sessions) > self._max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(session_id)
            return s

    def reset_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    # -- deciding --
    def decide(self, action: Action) -> Decision:
        t0 = time.perf_counter()
        try:
            d = self._decide(action, t0)
        except CheckTimeout as e:
            d = Decision(self.on_error, ["gate.timeout"], [f"fail closed: {e}"])
        except Exception as e:  # fail closed: never ALLOW on an internal error
            d = Decision(self.on_error, ["gate.error"], [f"fail closed: a check raised {type(e).__name__}: {str(e)[:200]}"])
        d.tool = action.tool
        d.policy = self.policy.name
        d.latency_us = (time.perf_counter() - t0) * 1e6
        return d

    def _decide(self, action: Action, t0: float) -> Decision:
        name = self.lookup.get(action.tool.lower()) if isinstance(action.tool, str) else None
        if name is None:
            return Decision(self.policy.unknown_tool, ["tool.unknown"],
                            [f"tool '{action.tool}' is not in policy '{self.policy.name}' (default deny)"])
        tool = self.tools[name]
        view = self._view(action.principal, action.role)
        if isinstance(view, str):
            return Decision("BLOCK", ["rbac.no_role"], [view])
        if name not in view.tools:
            return Decision("BLOCK", ["rbac.tool_not_allowed"], [f"role {view.label} may not use tool '{name}'"])
        args = action.arguments if isinstance(action.arguments, dict) else None
        if args is None:
            return Decision("BLOCK", ["args.invalid"], ["arguments must be a JSON object"])

        out = Findings(deadline=t0 + self.check_timeout_s)
        sess = self.session(action.session_id) if action.session_id is not None else None
        now = self.clock()
        if sess is not None:
            self._session_limits(sess, now, out)
        if self._too_large(args):
            out.add("args.too_large", "BLOCK", f"arguments exceed {self._max_chars} characters; not analysed")
        else:
            for c in tool.constraints:
                c.check(name, args, out)
            if tool.validator is not None:
                err = next(iter(tool.validator.iter_errors(args)), None)
                if err is not None:
                    where = "/".join(map(str, err.absolute_path)) or "<arguments>"
                    out.add(f"args.{name}.schema", "BLOCK", f"arguments fail the tool's JSON schema at {where}: {err.message}")
            self._kind_checks(tool, args, action, view, sess, out)
            for check in self.extra_checks:
                check(action, out)
        if tool.spec.verdict is not None and tool.spec.verdict != "ALLOW":
            out.add(f"tool.{name}.verdict", tool.spec.verdict, f"policy sets every '{name}' call to {tool.spec.verdict}")
        if tool.irreversible and not view.trusted_irreversible:
            out.add("irreversible", self.policy.irreversible.verdict, f"'{name}' is irreversible; needs human approval")

        if sess is not None and sess.tainted and tool.kind in OUTBOUND_KINDS | {"shell", "python", "payment"}:
            # an agent that already went for secrets does not get to send things out unreviewed
            out.add("session.tainted", "REVIEW", f"earlier in this session: {sess.tainted}")
        verdict = combine(out.items)
        if verdict == "ALLOW":
            d = Decision("ALLOW", [], [f"tool '{name}' allowed for role {view.label}; no rule matched"])
        else:
            items = sorted(out.items, key=lambda f: -SEVERITY[f.verdict])
            d = Decision(verdict, [f.rule_id for f in items], [f.reason for f in items])
        if sess is not None:
            with self._lock:
                sess.history.append((name, d.verdict, tuple(d.rule_ids)))
                if sess.tainted is None:
                    hit = next((r for r in d.rule_ids if r in TAINTING_RULES), None)
                    if hit is not None and d.verdict == "BLOCK":
                        sess.tainted = f"'{name}' was blocked by {hit}"
                if d.verdict == "ALLOW" and tool.kind == "payment":
                    sess.spent += self._amount(args) or 0.0
        return d

    def _too_large(self, args: dict) -> bool:
        total = 0
        for v in args.values():
            if isinstance(v, str):
                total += len(v)
            elif isinstance(v, (list, dict)):
                total += len(str(v))
        return total > self._max_chars

    def _session_limits(self, sess: GateSession, now: float, out: Findings) -> None:
        lim = self._sess
        with self._lock:
            sess.n_calls += 1
            if lim.rate_calls is not None:
                while sess.calls and now - sess.calls[0] > lim.rate_window_s:
                    sess.calls.popleft()
                sess.calls.append(now)
                if len(sess.calls) > lim.rate_calls:
                    out.add("session.rate_limit", lim.verdict,
                            f"more than {lim.rate_calls} calls in {lim.rate_window_s:g}s in this session")
            if lim.max_calls is not None and sess.n_calls > lim.max_calls:
                out.add("session.max_calls", lim.verdict, f"session exceeded {lim.max_calls} tool calls")

    def _payloads(self, tool: _CompiledTool, args: dict) -> list[str]:
        out = []
        for a in tool.args:
            v = args.get(a)
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
                if tool.kind == "shell" and a in ("command", "cmd", "args", "argv"):
                    out.append(shlex.join(v))  # an argv list is one command
                else:
                    out.extend(v)
        return out

    def _amount(self, args: dict) -> float | None:
        for a in self._pay.amount_args:
            if a in args and args[a] is not None:
                v = args[a]
                if isinstance(v, bool):
                    raise ValueError(f"payment amount '{a}' is not a number")
                if isinstance(v, str):
                    v = v.strip().lstrip("$€£").replace(",", "")
                return float(v)
        return None

    def _kind_checks(self, tool: _CompiledTool, args: dict, action: Action, view: _RoleView, sess, out: Findings) -> None:
        kind = tool.kind
        ctx = action.context or {}
        cwd = ctx.get("cwd") if isinstance(ctx.get("cwd"), str) else None
        det = self.policy.detectors
        payloads = self._payloads(tool, args)
        if kind in ("shell", "python", "sql") and any(len(p) > self._max_script for p in payloads):
            out.add("args.too_large", "BLOCK", f"{kind} payload exceeds {self._max_script} characters; not analysed")
            return
        if kind == "shell":
            if det.shell.enabled:
                for p in payloads:
                    self._memo("shell", p, cwd, out, self.shell.analyze)
        elif kind == "python":
            if det.python.enabled:
                for p in payloads:
                    self._memo("python", p, cwd, out, self.python.analyze)
        elif kind == "sql":
            if det.sql.enabled:
                for p in payloads:
                    self.sql.analyze(p, out, read_only=view.read_only_sql)
        elif kind == "http":
            for p in payloads:
                self.scopes.check_url(p, out, what=f"{tool.name}")
        elif kind in ("file_read", "file_list"):
            for p in payloads:
                self.scopes.check_read(p, out, cwd=cwd, what="listing" if kind == "file_list" else "read")
        elif kind == "file_write":
            for p in payloads:
                self.scopes.check_write(p, out, cwd=cwd)
        elif kind == "file_delete":
            recursive = bool(args.get("recursive"))
            for p in payloads:
                if recursive and self.scopes.is_critical(p, cwd):
                    out.add("file.recursive_delete", "BLOCK", f"recursive delete of {self.scopes.norm(p, cwd)}")
                self.scopes.check_write(p, out, cwd=cwd, what="delete")
        elif kind == "email":
            for key in ("attachments", "attachment", "files"):
                att = args.get(key)
                for a in (att if isinstance(att, list) else [att] if isinstance(att, str) else []):
                    if isinstance(a, str):
                        self.scopes.check_read(a, out, cwd=cwd, rule="email.attachment", what="attaching")
        elif kind == "payment":
            self._payment(args, view, sess, out)
        if det.secrets.enabled and kind in OUTBOUND_KINDS:
            for key, v in args.items():
                if isinstance(v, str) and len(v) >= 16:
                    hit = find_secrets(v)
                    if hit:
                        out.add("secrets.outbound", det.secrets.verdict,
                                f"argument '{key}' contains a credential ({hit}); it would leave the system")

    def _memo(self, kind: str, payload: str, cwd: str | None, out: Findings, analyze) -> None:
        """Detector results are a pure function of (payload, cwd, policy): memoise them (bounded).

        Agents repeat the same commands (git status, pytest, ls) all day, so repeats cost a dict
        lookup. Analyses cut short by the time budget raise and are never stored.
        """
        key = (kind, payload, cwd)
        hit = self._analysis_memo.get(key)
        if hit is None:
            local = Findings(deadline=out.deadline)
            analyze(payload, local, cwd=cwd)
            hit = tuple((f.rule_id, f.verdict, f.reason) for f in local.items)
            if len(payload) <= 8192:
                with self._lock:
                    if len(self._analysis_memo) >= 16384:
                        self._analysis_memo.pop(next(iter(self._analysis_memo)))
                    self._analysis_memo[key] = hit
        for rule_id, verdict, reason in hit:
            out.add(rule_id, verdict, reason)

    def _payment(self, args: dict, view: _RoleView, sess, out: Findings) -> None:
        pay = self._pay
        try:
            amount = self._amount(args)
        except (TypeError, ValueError):
            out.add("payment.bad_amount", "BLOCK", "payment amount is not a number")
            return
        if amount is None:
            out.add("payment.no_amount", "REVIEW", "payment without a recognisable amount")
            return
        if amount != amount or amount <= 0:  # NaN or non-positive
            out.add("payment.bad_amount", "BLOCK", f"payment amount {amount} is not a positive number")
            return
        cur = args.get("currency")
        if pay.currency and isinstance(cur, str) and cur.upper() != pay.currency.upper():
            out.add("payment.currency", "REVIEW", f"payment in {cur}, policy limits are in {pay.currency}")
        review_above = view.payment_review_above if view.payment_review_above is not None else pay.review_above
        if pay.block_above is not None and amount > pay.block_above:
            out.add("payment.block_limit", "BLOCK", f"payment of {amount:g} exceeds the hard limit {pay.block_above:g}")
        elif amount > review_above:
            out.add("payment.review_limit", "REVIEW", f"payment of {amount:g} is above {review_above:g}; needs approval")
        budget = self._sess.budget
        if budget is not None and sess is not None and sess.spent + amount > budget:
            out.add("session.budget", self._sess.verdict,
                    f"payment of {amount:g} would bring session spend to {sess.spent + amount:g}, over the budget {budget:g}")
