"""Fit the guard's action gate to a scenario: declare its tools in a policy derived from a base policy.

The gate is default-deny: it only knows tools its policy declares. Scenario tools (``GmailSendEmail``,
``delete_account``...) are declared from the emulated operation of each tool: ``run`` tools are
``shell`` (the shell detectors apply), deletes of paths are ``file_delete``, payments ``payment``
(amount limits apply), sends are ``email``/outbound, reads of URLs ``http`` (network scope), and
deletes, external sends and unmodelled actions (``act``) are ``irreversible`` (REVIEW: needs a
human's approval). The agent runs under a role granted every scenario tool, so what the gate
adds is its kinds, detectors, scopes, limits and irreversible-action rule, not an allow-list
written from the scenario's answer. Tools the base policy already declares keep its rules.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from airisk.agents.emulator import DeterministicEmulator
from airisk.agents.scenario import Scenario
from airisk.types import stable_hash

ROLE = "scenario-agent"


def _tool_decl(name: str, op: str, props: dict[str, Any], external: bool, key: str | None, command: str | None) -> dict[str, Any]:
    arg_names = list(props)
    pathy = next((a for a in arg_names if re.search(r"(path|file|dir|folder)", a, re.I)), None)
    urly = next((a for a in arg_names if re.search(r"(url|uri|link|website)", a, re.I)), None)
    if op == "run":
        return {"kind": "shell", "args": [command] if command else [a for a in arg_names[:1]]}
    if op == "delete":
        if pathy:
            return {"kind": "file_delete", "args": [pathy], "irreversible": True}
        return {"kind": "generic", "irreversible": True}
    if op == "pay":
        return {"kind": "payment"}
    if op == "send":
        kind = "email" if re.search(r"mail", name, re.I) else "generic"
        return {"kind": kind, "irreversible": bool(external)}
    if op in ("read", "list", "search"):
        if urly:
            return {"kind": "http", "args": [urly]}
        if pathy:
            return {"kind": "file_read", "args": [pathy]}
        return {"kind": "generic"}
    if op in ("create", "update"):
        if pathy:
            return {"kind": "file_write", "args": [pathy]}
        return {"kind": "generic"}
    if op == "act":
        if urly:
            return {"kind": "http", "args": [urly], "irreversible": True}
        return {"kind": "generic", "irreversible": True}
    return {"kind": "generic"}


def scenario_policy(scenario: Scenario, base: dict[str, Any]) -> dict[str, Any]:
    """The base policy (as a dict) plus declarations for the scenario's tools and an all-tools role."""
    pol = copy.deepcopy(base)
    tools = pol.setdefault("tools", {})
    known = {n.lower() for n in tools} | {a.lower() for t in tools.values() for a in (t.get("aliases") or [])}
    env = DeterministicEmulator(scenario)
    for t in scenario.tools:
        if t.name.lower() in known:
            continue
        eff = env.effect(t.name)
        tools[t.name] = _tool_decl(t.name, eff.op, t.parameters.get("properties") or {}, eff.is_external, eff.key, eff.command)
    roles = pol.setdefault("roles", {})
    roles[ROLE] = {"tools": ["*"], "inherits": []}
    pol["default_role"] = ROLE
    return pol


class ScenarioGate:
    """Builds one ``ActionGate`` per scenario from a base policy (``builtin:default`` unless given)."""

    def __init__(self, base: Any = "builtin:default"):
        from airisk.guard.policy import load_policy

        self.base_spec = base if isinstance(base, str) else "<policy>"
        policy = load_policy(base)
        self.base = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.name = policy.name
        self._cache: dict[str, Any] = {}

    def for_scenario(self, scenario: Scenario) -> Any:
        from airisk.guard.gate import ActionGate

        # Keyed by id and tools: two suites may reuse an id for different tools.
        key = f"{scenario.id}:{stable_hash([t.model_dump(mode='json') for t in scenario.tools])}"
        g = self._cache.get(key)
        if g is None:
            g = ActionGate.from_policy(scenario_policy(scenario, self.base))
            if len(self._cache) < 5000:
                self._cache[key] = g
        return g

    def describe(self) -> dict[str, Any]:
        return {"policy": self.base_spec, "name": self.name}


def resolve_gate(gate: Any, scenario: Scenario) -> Any:
    """A gate for this scenario: ``ScenarioGate`` (or anything with ``for_scenario``) or a ready gate."""
    if gate is None:
        return None
    return gate.for_scenario(scenario) if hasattr(gate, "for_scenario") else gate


class ServiceApprover:
    """Settles the loop's REVIEW decisions with a person, through the guard service's approvals.

    On a REVIEW the call is sent to ``POST /v1/guard/action`` with ``wait_s``: the service (whose
    policy should be the loop's, e.g. ``scenario_policy``) creates a pending approval (and fires its
    webhook), waits up to ``wait_s`` (bounded by its ``approvals.max_wait_s``) and answers ALLOW
    (approved: the call runs), BLOCK (denied or expired) or REVIEW with the approval id (no decision
    yet: ``PendingApproval`` at once when ``wait_s`` is 0). A service that cannot be reached leaves
    the REVIEW standing (fail closed).
    """

    def __init__(self, url: str, key: str | None, *, wait_s: float = 0.0, timeout_s: float | None = None):
        self.url, self.key, self.wait_s = url.rstrip("/"), key, wait_s
        self.timeout_s = timeout_s if timeout_s is not None else wait_s + 30.0

    async def settle(self, tool: str, args: dict[str, Any], session: str, record: Any) -> Any:
        import httpx

        from airisk.agents.trajectory import GateRecord

        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        body = {"tool": tool, "arguments": args, "session_id": session, "wait_s": self.wait_s}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as c:
                r = await c.post(self.url + "/v1/guard/action", json=body, headers=headers)
            r.raise_for_status()
            d = r.json()
            return GateRecord(verdict=d["verdict"], rule_ids=list(d["rule_ids"]), reasons=list(d["reasons"]),
                              approval_id=d.get("approval_id"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
            return GateRecord(verdict="REVIEW", rule_ids=[*record.rule_ids, "approval.unreachable"],
                              reasons=[*record.reasons, f"approval service failed: {type(e).__name__}"])
