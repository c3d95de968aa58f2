"""Red-teaming: mutators and attacks with lineage, multi-turn attacks, campaigns and their results.

- ``base``: ``Attempt`` (a candidate prompt and how it was made), ``Mutator``, ``Chain``, attempt ids;
- ``mutators`` / ``attacker``: deterministic and attacker-model mutators (entry points ``airisk.mutators``);
- ``attack`` / ``multiturn``: single-turn chains, scripted escalation, crescendo, PAIR (``airisk.attacks``);
- ``registry``: attack specs (``"base64+roleplay,crescendo"``) to attacks;
- ``campaign``: run seeds x attacks against a system, judged, into the Store (run kind ``redteam``);
- ``results`` / ``report``: success rates, uplift, best attack, queries to success; the report section.
"""

from airisk.attacks.base import Attempt, AttackError, Chain, Mutator, Step, attempt_id
from airisk.attacks.registry import catalog, make_attack, make_attacks

__all__ = ["Attempt", "AttackError", "Chain", "Mutator", "Step", "attempt_id", "catalog", "make_attack", "make_attacks"]
