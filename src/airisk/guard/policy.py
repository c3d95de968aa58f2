"""Guard policy: the YAML schema (Pydantic), loading with errors that name the line, built-ins.

A policy says who may call which tools, with which arguments, on which resources, and what the
built-in detectors and money/rate limits do. ``load_policy`` accepts a path, a YAML string or a
dict; validation errors are reported as ``<source>:<line>: <field>: <problem>``.
"""

from __future__ import annotations

import ipaddress
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from airisk.errors import ConfigError
from airisk.safe_yaml import load_yaml, read_config_text

Verdict = Literal["ALLOW", "BLOCK", "REVIEW"]
ToolKind = Literal["shell", "python", "sql", "http", "file_read", "file_write", "file_delete", "file_list",
                   "email", "payment", "generic"]


MAX_COUNT = 10**12  # upper bound for counts and sizes: far above any real limit, far below int overflow
MAX_PATTERN_CHARS = 2_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def compile_pattern(pattern: str):
    """Compile a policy regex with RE2, a linear-time engine: an argument of any size is matched in
    time proportional to its length, so no pattern (``(a+)+$`` included) can stall a decision.

    RE2 has no backreferences or lookarounds (the features that need backtracking); a pattern using
    them is refused with a message saying so. The result has ``search`` and ``fullmatch`` like ``re``.
    """
    import re2

    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"regex longer than {MAX_PATTERN_CHARS} characters")
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as e:
        raise ValueError(f"invalid regex {pattern!r}: {e}") from None
    options = re2.Options()
    options.log_errors = False  # the error is reported to the user below, not logged to stderr
    try:
        return re2.compile(pattern, options)
    except Exception as e:  # re2.error; RE2 refuses backreferences, lookarounds, huge repeats
        why = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(f"regex {pattern!r} is not supported by the linear-time engine (RE2: {why}); "
                         "backreferences and lookarounds are not allowed") from None


def _check_hosts(hosts: list[str]) -> list[str]:
    for h in hosts:
        if "/" in h:
            try:
                ipaddress.ip_network(h, strict=False)
            except ValueError as e:
                raise ValueError(f"invalid CIDR block {h!r}: {e}") from None
    return hosts


class ArgConstraint(_Strict):
    """Constraint on one argument: any of regex / glob / enum / numeric range / length."""

    required: bool = False
    type: Literal["string", "number", "integer", "boolean", "array", "object"] | None = None
    pattern: str | None = None  # the value must fully match this regex
    not_pattern: str | None = None  # the value must not contain a match of this regex
    glob: list[str] | None = None  # the value must match one of these globs
    enum: list[Any] | None = None
    min: float | None = Field(None, allow_inf_nan=False)
    max: float | None = Field(None, allow_inf_nan=False)
    max_length: int | None = Field(None, ge=0, le=MAX_COUNT)
    verdict: Verdict = "BLOCK"  # what a violation yields

    @field_validator("pattern", "not_pattern")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            compile_pattern(v)
        return v


class ToolSpec(_Strict):
    """A tool the policy knows: its kind (which detectors and scopes apply) and argument rules."""

    kind: ToolKind = "generic"
    aliases: list[str] = Field(default_factory=list)
    description: str | None = None
    # Which arguments carry the payload; empty means the kind's usual names (command, query, path, url...).
    args: list[str] = Field(default_factory=list)
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    constraints: dict[str, ArgConstraint] = Field(default_factory=dict)
    irreversible: bool = False  # REVIEW unless the role is trusted for it
    verdict: Verdict | None = None  # force a verdict for every call of this tool (e.g. REVIEW)


class RoleSpec(_Strict):
    tools: list[str] = Field(default_factory=list)  # tool names or globs ("*" = any known tool)
    deny_tools: list[str] = Field(default_factory=list)
    inherits: list[str] = Field(default_factory=list)
    read_only_sql: bool = False
    trusted_irreversible: bool = False  # irreversible tools ALLOW instead of REVIEW
    payment_review_above: float | None = Field(None, ge=0, allow_inf_nan=False)  # overrides limits.payment for this role


class PrincipalSpec(_Strict):
    roles: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)  # extra tools granted directly


class PathScope(_Strict):
    allow: list[str] = Field(default_factory=list)  # empty = anywhere not denied
    deny: list[str] = Field(default_factory=list)
    review: list[str] = Field(default_factory=list)  # allowed only after human approval (REVIEW)
    verdict: Verdict = "BLOCK"


class FilesystemScope(_Strict):
    home: str = "/home/agent"
    cwd: str = "/workspace"
    read: PathScope = Field(default_factory=PathScope)
    write: PathScope = Field(default_factory=PathScope)
    # Recursive deletes of these (or of anything at depth <= root_depth) are always blocked.
    critical: list[str] = Field(default_factory=list)
    root_depth: int = Field(1, ge=0, le=1000)


class DnsCheck(_Strict):
    """Resolve the names the agent wants to reach; block names that resolve inside the network."""

    enabled: bool = False  # off: host checks stay textual (no lookups, fully deterministic)
    timeout_s: float = Field(1.0, gt=0, le=30)
    cache_ttl_s: float = Field(300.0, ge=0, le=86400)
    negative_ttl_s: float = Field(30.0, ge=0, le=86400)  # how long a failed lookup is remembered
    allow_hosts: list[str] = Field(default_factory=list)  # names (and *.suffixes) never resolved
    # a name that is not textually loopback but resolves to loopback (localtest.me) is a disguise:
    # blocked even when loopback literals are allowed, unless this is set
    allow_loopback: bool = False
    on_failure: Verdict = "ALLOW"  # no answer / NXDOMAIN / timeout: a name that does not resolve cannot be reached

    _hosts = field_validator("allow_hosts")(classmethod(lambda cls, v: _check_hosts(v)))


class NetworkScope(_Strict):
    allow_hosts: list[str] = Field(default_factory=list)  # empty = any public host
    deny_hosts: list[str] = Field(default_factory=list)
    schemes: list[str] = Field(default_factory=lambda: ["http", "https"])
    allow_loopback: bool = True
    allow_private: bool = False  # RFC 1918, link-local (cloud metadata), ...
    # Hosts that code run by the agent (shell/python tools) may reach; others -> code_egress_verdict.
    code_allow_hosts: list[str] = Field(default_factory=list)
    code_egress_verdict: Verdict = "REVIEW"
    verdict: Verdict = "BLOCK"
    dns: DnsCheck = Field(default_factory=DnsCheck)  # resolve names: SSRF through DNS (off by default)

    _hosts = field_validator("allow_hosts", "deny_hosts", "code_allow_hosts")(
        classmethod(lambda cls, v: _check_hosts(v)))


class DatabaseScope(_Strict):
    allow_tables: list[str] = Field(default_factory=list)  # globs; empty = any not denied
    deny_tables: list[str] = Field(default_factory=list)
    dialect: str | None = None
    verdict: Verdict = "BLOCK"


class Scopes(_Strict):
    filesystem: FilesystemScope = Field(default_factory=FilesystemScope)
    network: NetworkScope = Field(default_factory=NetworkScope)
    database: DatabaseScope = Field(default_factory=DatabaseScope)


class DetectorSwitch(_Strict):
    enabled: bool = True
    verdict: Verdict = "BLOCK"


class Detectors(_Strict):
    shell: DetectorSwitch = Field(default_factory=DetectorSwitch)
    sql: DetectorSwitch = Field(default_factory=DetectorSwitch)
    python: DetectorSwitch = Field(default_factory=DetectorSwitch)
    secrets: DetectorSwitch = Field(default_factory=DetectorSwitch)  # secrets in outbound arguments


class PaymentLimits(_Strict):
    amount_args: list[str] = Field(default_factory=lambda: ["amount", "value", "total", "price", "sum"])
    review_above: float = Field(100.0, ge=0, allow_inf_nan=False)
    block_above: float | None = Field(10000.0, ge=0, allow_inf_nan=False)
    currency: str | None = None


class SessionLimits(_Strict):
    max_calls: int | None = Field(None, ge=0, le=MAX_COUNT)  # per session
    rate_calls: int | None = Field(None, ge=1, le=MAX_COUNT)  # at most rate_calls ...
    rate_window_s: float = Field(60.0, gt=0, le=10**9, allow_inf_nan=False)  # ... per this many seconds
    budget: float | None = Field(None, ge=0, allow_inf_nan=False)  # total payments ALLOWed per session
    verdict: Verdict = "BLOCK"
    history: int = Field(50, ge=1, le=100_000)  # how many past decisions a session remembers


class Limits(_Strict):
    payment: PaymentLimits = Field(default_factory=PaymentLimits)
    session: SessionLimits = Field(default_factory=SessionLimits)
    max_argument_chars: int = Field(100_000, ge=1, le=10**9)  # larger payloads are refused before parsing
    max_script_chars: int = Field(32_768, ge=1, le=10**9)  # per shell command / SQL query / Python program (parsers are superlinear)


class IrreversibleRule(_Strict):
    tools: list[str] = Field(default_factory=list)  # globs over tool names
    verdict: Verdict = "REVIEW"


class Policy(_Strict):
    """A whole guard policy (the YAML document)."""

    version: int = 1
    name: str = "policy"
    description: str | None = None
    default_role: str | None = None  # used when an action names neither a known principal nor a role
    unknown_tool: Verdict = "BLOCK"  # default deny
    on_error: Literal["BLOCK", "REVIEW"] = "BLOCK"  # fail closed
    tools: dict[str, ToolSpec] = Field(default_factory=dict)
    roles: dict[str, RoleSpec] = Field(default_factory=dict)
    principals: dict[str, PrincipalSpec] = Field(default_factory=dict)
    scopes: Scopes = Field(default_factory=Scopes)
    detectors: Detectors = Field(default_factory=Detectors)
    limits: Limits = Field(default_factory=Limits)
    irreversible: IrreversibleRule = Field(default_factory=IrreversibleRule)
    # The content guard's part of the policy (thresholds, safe completions) is kept as a plain
    # mapping here and validated by airisk.guard.content when a content guard is built.
    content: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        for rname, role in self.roles.items():
            for parent in role.inherits:
                if parent not in self.roles:
                    raise ValueError(f"role '{rname}' inherits unknown role '{parent}'")
        for pname, p in self.principals.items():
            for r in p.roles:
                if r not in self.roles:
                    raise ValueError(f"principal '{pname}' has unknown role '{r}'")
        if self.default_role is not None and self.default_role not in self.roles:
            raise ValueError(f"default_role '{self.default_role}' is not a defined role")


# --- loading ---------------------------------------------------------------------------------

def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
    for n in range(len(loc), -1, -1):  # deepest known ancestor of the failing field
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _alias_loc(loc: tuple) -> tuple:
    return tuple("schema" if p == "json_schema" else p for p in loc)


def parse_policy_text(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy document; bounded YAML (no alias bombs, deep nesting, duplicate keys, huge integers)."""
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: a policy must be a YAML mapping, got {type(data).__name__}")
    return _validate(data, source, lines)


def _validate(data: dict, source: str, lines: dict[tuple, int]) -> Policy:
    from airisk.guard.content import ContentPolicy  # the content guard owns its schema

    try:
        policy = Policy.model_validate(data)
        try:
            ContentPolicy.model_validate(policy.content)
        except ValidationError as ce:
            raise ValidationError.from_exception_data(
                ce.title, [{**err, "loc": ("content", *err["loc"])} for err in ce.errors()]) from None  # type: ignore[misc]
        return policy
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = _alias_loc(tuple(err["loc"]))
            line = _line_for(loc, lines)
            where = f"{source}:{line}" if line else source
            field = ".".join(str(p) for p in loc) or "<root>"
            msgs.append(f"{where}: {field}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("; ".join(msgs)) from None
    except ValueError as e:  # model_post_init cross-reference checks
        raise ConfigError(f"{source}: {e}") from None


def load_policy(spec: str | Path | dict | Policy) -> Policy:
    """A validated Policy from a path, a YAML string, a built-in name (``builtin:default``) or a dict."""
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, dict):
        return _validate(spec, "<policy dict>", {})
    if isinstance(spec, Path) or (isinstance(spec, str) and "\n" not in spec and
                                  (spec.endswith((".yaml", ".yml")) or spec.startswith("builtin:"))):
        s = str(spec)
        if s.startswith("builtin:"):
            return parse_policy_text(builtin_policy_text(s.split(":", 1)[1]), s)
        p = Path(s)
        if not p.is_file():
            raise ConfigError(f"policy file not found: {p}")
        return parse_policy_text(read_config_text(p, what="policy"), str(p))
    if isinstance(spec, str):
        return parse_policy_text(spec)
    raise ConfigError(f"cannot load a policy from {type(spec).__name__}")


def builtin_policies() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("airisk.guard.policies").iterdir() if p.name.endswith(".yaml"))


def builtin_policy_text(name: str) -> str:
    f = resources.files("airisk.guard.policies") / f"{name}.yaml"
    if not f.is_file():
        raise ConfigError(f"unknown built-in policy '{name}' (available: {', '.join(builtin_policies())})")
    return f.read_text(encoding="utf-8")
