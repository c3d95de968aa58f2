"""Runtime guard: a deterministic action gate for agent tool calls, a content guard, safe
completions, a tamper-evident audit log and an HTTP service with a guarded OpenAI-compatible proxy.

Public API (stable)::

    from airisk.guard import ActionGate, Action, Decision
    gate = ActionGate.default()                 # or ActionGate.from_policy("my_policy.yaml")
    d = gate.decide(Action(tool="shell", arguments={"command": "rm -rf /"}, session_id="s1"))
    d.verdict, d.rule_ids, d.reasons            # 'BLOCK', ['shell.recursive_delete'], [...]
"""

from airisk.guard.actions import Action, Decision, Finding
from airisk.guard.gate import ActionGate, GateSession
from airisk.guard.policy import Policy, load_policy

__all__ = ["Action", "ActionGate", "Decision", "Finding", "GateSession", "Policy", "load_policy"]
