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

import base64
import binascii
import re
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
from airisk.guard.detectors.dns import DNS_MARK, DnsCache, Resolver
from airisk.guard.detectors.paths import GlobSet, host_class
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
CODE_KINDS = frozenset({"shell", "python", "sql"})
# Shell tools often take a program and its argument vector separately: {"command": "rm", "args": [...]}.
SHELL_PROGRAM_ARGS = ("command", "cmd", "program", "executable", "binary")
SHELL_ARGV_ARGS = ("args", "argv", "arguments", "arg_list")
# Arguments that set where code runs: they change how relative paths resolve.
CWD_ARGS = ("cwd", "workdir", "working_directory", "working_dir", "directory")
# Arguments treated as data, never as code, for code tools: prose and plain options. Everything
# else a code tool receives is analysed as code of the tool's kind (default deny: what does not
# parse needs REVIEW).
DATA_ARGS = frozenset({"description", "reason", "explanation", "title", "comment", "summary", "purpose", "thought",
                       "rationale", "timeout", "timeout_s", "timeout_ms", "timeout_seconds", "language", "lang", "dialect",
                       "database", "db", "schema", "name", "id", "session_id", "params", "parameters", "bindings",
                       "env_name", "shell", "interpreter", "max_output", "max_rows", "limit", "format", "encoding", *CWD_ARGS})
# Leaf values under keys with these words are locations (paths / URLs) even when the policy does
# not name the argument; content-like keys are data.
_LOCATION_KEY = re.compile(r"(?i)path|file|dir|folder|target|dest|src|source|location|url|uri|link|href|endpoint|host|site|address|server|domain")
_CONTENT_KEY = re.compile(r"(?i)content|data|text|body|message|payload|html|markdown|json|value|note|summary|description")
_URL_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,15}://\S+$")
_PATH_VALUE = re.compile(r"^(?:/|~|\$HOME|\.\./)\S*$")
MAX_ARG_DEPTH = 32
# Reads that put sensitive data in the agent's hands when a human approves them: once one happened
# in a session, sending data out of the system in that session needs review (read -> egress flow).
SENSITIVE_READ_RULES = frozenset({"scope.fs.read_review", "shell.env_dump", "python.env_dump", "email.attachment_review"})
_SH_EGRESS = re.compile(r"(?:^|[\s;&|(`/])(?:curl|wget|nc|ncat|netcat|socat|telnet|ssh|scp|sftp|rsync|ftp|mail|mailx|sendmail|"
                        r"mutt|http|https|aria2c)(?:\s|$)|/dev/(?:tcp|udp)/")
READ_EGRESS_WINDOW = 50  # calls after a sensitive read during which egress needs review
_PY_EGRESS = re.compile(r"\b(?:requests|urllib|httpx|aiohttp|http\.client|socket|smtplib|ftplib|paramiko|urllib3)\b")
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
    sensitive_read: tuple | None = None  # (why, call number): a system area or the environment was read; egress needs review


@dataclass(slots=True)
class _RoleView:
    tools: frozenset
    read_only_sql: bool
    trusted_irreversible: bool
    payment_review_above: float | None
    label: str


_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{20,}={0,2}")


def _find_encoded_secret(text: str, out: Findings, max_tokens: int = 256) -> str | None:
    """A credential inside base64 (standard or URL-safe) tokens of ``text``, decoded one level
    (the first ``max_tokens`` tokens: bounded work per value)."""
    for k, m in enumerate(_B64_TOKEN.finditer(text)):
        tok = m.group(0)[:8192]
        if k >= max_tokens:
            return None
        if k % 32 == 0:
            out.tick()
        try:
            raw = base64.b64decode(tok + "=" * (-len(tok) % 4), altchars=b"-_" if ("-" in tok or "_" in tok) else None)
            dec = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        hit = find_secrets(dec)
        if hit:
            return f"{hit}, base64-encoded"
    return None


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
                 extra_checks: list[Callable[[Action, Findings], None]] | None = None,
                 resolver: Resolver | None = None):
        self.policy = load_policy(policy)
        p = self.policy
        dns = p.scopes.network.dns
        # resolver: name -> addresses; the system's getaddrinfo unless given (tests pass a table)
        self.dns = DnsCache(resolver, timeout_s=dns.timeout_s, ttl_s=dns.cache_ttl_s,
                            negative_ttl_s=dns.negative_ttl_s) if dns.enabled else None
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
        self._static_cache: dict[tuple, tuple] = {}
        self._dns_verdicts: dict[tuple, tuple | None] = {}
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
        # Everything below up to the session rules is a pure function of (tool, principal, role,
        # cwd, arguments) and the policy: cached per distinct call, so an agent repeating
        # "git status" pays a dict lookup. Payments (session budget) and extra checks (caller code)
        # are never cached; a check cut short by the deadline raises and is never stored.
        key = self._static_key(name, tool, action, args)
        static = self._static_cache.get(key) if key is not None else None
        if static is None:
            local = Findings(deadline=out.deadline, work=out.work)
            self._static_checks(name, tool, args, action, view, sess, local)
            static = (tuple((f.rule_id, f.verdict, f.reason) for f in local.items if not f.rule_id.startswith(DNS_MARK)),
                      tool.kind in ("http", "email", "shell", "python") and self._egress(tool, args),
                      tuple((f.rule_id[len(DNS_MARK):].lstrip("?"), f.reason, f.rule_id.startswith(DNS_MARK + "?"))
                            for f in local.items if f.rule_id.startswith(DNS_MARK)))
            if key is not None:
                with self._lock:
                    if len(self._static_cache) >= 16384:
                        self._static_cache.pop(next(iter(self._static_cache)))
                    self._static_cache[key] = static
        for rule_id, verdict, reason in static[0]:
            out.add(rule_id, verdict, reason)
        egress = static[1]
        if static[2] and self.dns is not None:
            self._resolved(static[2], out)

        if sess is not None and sess.tainted and tool.kind in OUTBOUND_KINDS | {"shell", "python", "payment"}:
            # an agent that already went for secrets does not get to send things out unreviewed
            out.add("session.tainted", "REVIEW", f"earlier in this session: {sess.tainted}")
        elif sess is not None and sess.sensitive_read and egress and sess.n_calls - sess.sensitive_read[1] <= READ_EGRESS_WINDOW:
            out.add("session.read_then_egress", "REVIEW",
                    f"sends data out after reading sensitive data earlier in this session ({sess.sensitive_read[0]})")
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
                if sess.sensitive_read is None and d.verdict == "REVIEW":
                    hit = next((r for r in d.rule_ids if r in SENSITIVE_READ_RULES), None)
                    if hit is not None:
                        sess.sensitive_read = (f"'{name}' matched {hit}", sess.n_calls)
        return d

    def _leaves(self, args: dict) -> tuple[list[tuple[tuple, Any]], str | None]:
        """Every scalar in the arguments with its key path, walked iteratively (no recursion, so a
        deeply nested body cannot overflow the stack). Returns (leaves, problem): problem names a
        size or depth limit that was exceeded (the caller fails closed)."""
        leaves: list[tuple[tuple, Any]] = []
        total = 0
        stack: list[tuple[tuple, Any]] = [((k,), v) for k, v in reversed(list(args.items()))]
        while stack:
            path, v = stack.pop()
            if len(path) > MAX_ARG_DEPTH:
                return leaves, f"arguments nest deeper than {MAX_ARG_DEPTH} levels; not analysed"
            if isinstance(v, dict):
                total += len(v)
                stack.extend(((*path, k), x) for k, x in reversed(list(v.items())))
            elif isinstance(v, (list, tuple)):
                total += len(v)
                stack.extend(((*path, i), x) for i, x in reversed(list(enumerate(v))))
            else:
                total += len(v) if isinstance(v, str) else 8
                leaves.append((path, v))
            if total > self._max_chars:
                return leaves, f"arguments exceed {self._max_chars} characters; not analysed"
        return leaves, None

    def _static_key(self, name: str, tool: _CompiledTool, action: Action, args: dict):
        if tool.kind == "payment" or self.extra_checks:
            return None
        try:
            blob = repr(args)
        except RecursionError:
            return None
        if len(blob) > 16384:
            return None
        ctx = action.context or {}
        return (name, action.principal, action.role, ctx.get("cwd") if isinstance(ctx.get("cwd"), str) else None, blob)

    def _static_checks(self, name: str, tool: _CompiledTool, args: dict, action: Action, view: _RoleView, sess,
                       out: Findings) -> None:
        leaves, problem = self._leaves(args)
        if problem is not None:
            out.add("args.too_large", "BLOCK", problem)
        else:
            for c in tool.constraints:
                c.check(name, args, out)
            if tool.validator is not None:
                err = next(iter(tool.validator.iter_errors(args)), None)
                if err is not None:
                    where = "/".join(map(str, err.absolute_path)) or "<arguments>"
                    out.add(f"args.{name}.schema", "BLOCK", f"arguments fail the tool's JSON schema at {where}: {err.message}")
            self._kind_checks(tool, args, leaves, action, view, sess, out)
            for check in self.extra_checks:
                check(action, out)
        if tool.spec.verdict is not None and tool.spec.verdict != "ALLOW":
            out.add(f"tool.{name}.verdict", tool.spec.verdict, f"policy sets every '{name}' call to {tool.spec.verdict}")
        if tool.irreversible and not view.trusted_irreversible:
            out.add("irreversible", self.policy.irreversible.verdict, f"'{name}' is irreversible; needs human approval")

    def _resolved(self, names: tuple, out: Findings) -> None:
        """The DNS check: every name the call reaches, resolved (cached), must not point inside."""
        assert self.dns is not None
        fail = self.policy.scopes.network.dns.on_failure
        for host, what, capped in names:  # capped: a tool of unknown semantics given the URL: REVIEW at most
            addrs, err = self.dns.lookup(host)
            if err is not None:
                if fail != "ALLOW":
                    out.add("scope.net.dns_unresolved", "REVIEW" if capped else fail,
                            f"{what} to {host}: name does not resolve ({err})")
                continue
            key = (host, addrs)
            hit = self._dns_verdicts.get(key, False)
            if hit is False:  # classify each distinct answer once (address parsing is not free)
                hit = self._classify_answer(host, addrs)
                with self._lock:
                    if len(self._dns_verdicts) >= 16384:
                        self._dns_verdicts.pop(next(iter(self._dns_verdicts)))
                    self._dns_verdicts[key] = hit
            if hit is not None:
                out.add(hit[0], "REVIEW" if capped and hit[1] == "BLOCK" else hit[1], f"{what} to {host}, {hit[2]}")

    def _classify_answer(self, host: str, addrs: tuple) -> tuple[str, str, str] | None:
        net = self.policy.scopes.network
        for addr in addrs:
            cls = host_class(addr)
            if self.scopes.deny_hosts.match(addr):
                return "scope.net.deny_host", net.verdict, f"which resolves to denied address {addr}"
            if cls == "private" and not net.allow_private:
                return ("scope.net.dns_private", net.verdict,
                        f"which resolves to {addr} (private/link-local/metadata address: SSRF risk)")
            if cls == "loopback" and not (net.allow_loopback and net.dns.allow_loopback):
                return "scope.net.dns_loopback", net.verdict, f"which resolves to loopback {addr}"
        return None

    def _egress(self, tool: _CompiledTool, args: dict) -> bool:
        """Whether this call can send data out of the system (for the read -> egress session rule)."""
        if tool.kind in ("http", "email"):
            return True
        if tool.kind not in ("shell", "python"):
            return False
        text = " ".join(v for v in args.values() if isinstance(v, str))[:self._max_script]
        return bool((_PY_EGRESS if tool.kind == "python" else _SH_EGRESS).search(text))

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

    def _payloads(self, tool: _CompiledTool, args: dict, leaves: list) -> tuple[list[tuple[str, str, bool]], list[str]]:
        """What to analyse for a code or location tool: (argument name, text, primary) triples, and
        the names of primary arguments whose value is not text (cannot be analysed).

        Primary texts come from the argument names of the tool's kind; for shell tools a program and
        its argument vector ({"command": "rm", "args": [...]}, {"argv": [...]}) are joined into one
        command line. Every other string leaf (any key, any depth) is returned as non-primary so no
        argument name escapes analysis."""
        out: list[tuple[str, str, bool]] = []
        bad: list[str] = []
        used: set = set()
        if tool.kind == "shell":
            prog = next((a for a in SHELL_PROGRAM_ARGS if a in args and args[a] is not None), None)
            vec = next((a for a in SHELL_ARGV_ARGS if isinstance(args.get(a), list)), None)
            words: list[str] = []
            for a in (prog, vec):
                if a is None:
                    continue
                v = args[a]
                if isinstance(v, str):
                    words.append(v)
                elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                    words.append(shlex.join(v))
                else:
                    bad.append(a)
                used.add(a)
            if words:
                out.append((prog or vec, " ".join(words), True))
        for a in tool.args:
            if a in used or a not in args or args[a] is None:
                continue
            v = args[a]
            used.add(a)
            if isinstance(v, str):
                out.append((a, v, True))
            elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                out.extend((a, x, True) for x in v)
            else:
                bad.append(a)
        for path, v in leaves:
            if path[0] in used and path[0] not in bad:
                continue
            if isinstance(v, str) and v.strip():
                out.append((".".join(map(str, path)), v, path[0] in bad))
        return out, bad

    def _code(self, kind: str, name: str, text: str, primary: bool, cwd, view, out: Findings) -> None:
        det = self.policy.detectors
        if not getattr(det, kind).enabled:
            return
        if len(text) > self._max_script:
            out.add("args.too_large", "BLOCK", f"{kind} payload in '{name}' exceeds {self._max_script} characters; not analysed")
            return
        sink = out if primary else Findings(deadline=out.deadline, work=out.work)
        if kind == "sql":
            self.sql.analyze(text, sink, read_only=view.read_only_sql)
        else:
            self._memo(kind, text, cwd, sink, self.shell.analyze if kind == "shell" else self.python.analyze)
        if not primary:
            # an argument the policy does not name as code is still analysed as code; if it does
            # not even parse, the gate cannot tell what the tool will do with it: REVIEW
            for f in sink.items:
                if f.rule_id.endswith("parse_error"):
                    out.add("args.unanalysable", "REVIEW", f"argument '{name}' of a {kind} tool is not {kind} the gate can analyse")
                else:
                    out.add(f.rule_id, f.verdict, f"argument '{name}': {f.reason}")

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

    def _kind_checks(self, tool: _CompiledTool, args: dict, leaves: list, action: Action, view: _RoleView, sess,
                     out: Findings) -> None:
        kind = tool.kind
        ctx = action.context or {}
        cwd = ctx.get("cwd") if isinstance(ctx.get("cwd"), str) else None
        for a in CWD_ARGS:  # a tool told to run in "/" resolves "rm -rf *" there
            if isinstance(args.get(a), str) and args[a].strip() and kind in CODE_KINDS:
                cwd = self.scopes.norm(args[a], cwd)
                self.scopes.check_read(args[a], out, what=f"working directory '{a}'")
                break
        det = self.policy.detectors
        texts, bad = self._payloads(tool, args, leaves) if kind != "payment" else ([], [])
        if kind in CODE_KINDS:
            for a in bad:
                out.add("args.unanalysable", "REVIEW", f"argument '{a}' of a {kind} tool is a {type(args[a]).__name__}, "
                                                       "not code the gate can analyse")
            primary = [t for t in texts if t[2]]
            if not primary and not bad:
                out.add("args.no_code", "REVIEW", f"no {kind} code found in the arguments of '{tool.name}'")
            for name, text, is_primary in texts:
                key = name.split(".", 1)[0]
                if is_primary or key not in DATA_ARGS:
                    self._code(kind, name, text, is_primary, cwd, view, out)
        elif kind == "http":
            for name, text, is_primary in texts:
                if is_primary or _URL_VALUE.match(text) or (_LOCATION_KEY.search(name) and not _CONTENT_KEY.search(name)
                                                            and " " not in text.strip()):
                    self.scopes.check_url(text, out, what=f"{tool.name}")
        elif kind in ("file_read", "file_list", "file_write", "file_delete"):
            recursive = bool(args.get("recursive"))
            for name, text, is_primary in texts:
                if not (is_primary or (_LOCATION_KEY.search(name) and not _CONTENT_KEY.search(name))
                        or (_PATH_VALUE.match(text) and not _CONTENT_KEY.search(name)) or text[:7].lower() == "file://"):
                    continue
                if kind == "file_write":
                    self.scopes.check_write(text, out, cwd=cwd)
                elif kind == "file_delete":
                    if recursive and self.scopes.is_critical(text, cwd):
                        out.add("file.recursive_delete", "BLOCK", f"recursive delete of {self.scopes.norm(text, cwd)}")
                    self.scopes.check_write(text, out, cwd=cwd, what="delete")
                else:
                    self.scopes.check_read(text, out, cwd=cwd, what="listing" if kind == "file_list" else "read")
        elif kind == "payment":
            self._payment(args, view, sess, out)
        if kind in ("email", "generic", "payment"):
            if kind == "email":
                for key in ("attachments", "attachment", "files"):
                    att = args.get(key)
                    for a in (att if isinstance(att, list) else [att] if isinstance(att, str) else []):
                        if isinstance(a, str):
                            self.scopes.check_read(a, out, cwd=cwd, rule="email.attachment", what="attaching")
            # a tool of unknown semantics given an internal URL or a local file may fetch it: REVIEW
            for path, v in leaves:
                if isinstance(v, str) and (_URL_VALUE.match(v) or (_PATH_VALUE.match(v) and _LOCATION_KEY.search(str(path[-1])))):
                    probe = Findings(deadline=out.deadline, work=out.work)
                    if _URL_VALUE.match(v):
                        self.scopes.check_url(v, probe, what=f"argument '{'.'.join(map(str, path))}'")
                    elif kind != "email":
                        self.scopes.check_read(v, probe, cwd=cwd, what=f"argument '{'.'.join(map(str, path))}'")
                    for f in probe.items:
                        if f.rule_id.startswith(DNS_MARK):  # resolved later; capped at REVIEW like the textual checks
                            out.add(DNS_MARK + "?" + f.rule_id[len(DNS_MARK):].lstrip("?"), "ALLOW", f.reason)
                        elif f.rule_id != "scope.net.not_allowed":
                            out.add(f.rule_id, "REVIEW" if f.verdict == "BLOCK" else f.verdict, f.reason)
        if det.secrets.enabled and kind in OUTBOUND_KINDS:
            self._secrets(leaves, out)

    def _secrets(self, leaves: list, out: Findings) -> None:
        v = self.policy.detectors.secrets.verdict
        for path, val in leaves:
            if not isinstance(val, str) or len(val) < 8:
                continue
            out.tick()
            name = ".".join(map(str, path))
            key = path[-1] if isinstance(path[-1], str) else ""
            # long values in overlapping windows (a credential is far shorter than the overlap), so
            # the deadline is checked between regex scans
            hit = None
            for i in range(0, max(1, len(val) - 512), 8192):
                hit = find_secrets(val[i:i + 8192 + 512])
                out.tick()
                if hit:
                    break
            hit = hit or (find_secrets(f"{key}={val[:512]}") if key else None) or _find_encoded_secret(val, out)
            if hit:
                out.add("secrets.outbound", v, f"argument '{name}' contains a credential ({hit}); it would leave the system")

    def _memo(self, kind: str, payload: str, cwd: str | None, out: Findings, analyze) -> None:
        """Detector results are a pure function of (payload, cwd, policy): memoise them (bounded).

        Agents repeat the same commands (git status, pytest, ls) all day, so repeats cost a dict
        lookup. Analyses cut short by the time budget raise and are never stored.
        """
        key = (kind, payload, cwd)
        hit = self._analysis_memo.get(key)
        if hit is None:
            local = Findings(deadline=out.deadline, work=out.work)
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
