"""Which framework items a register's requirements give evidence for, with their status, and the gaps.

An item is covered by a requirement when the requirement names it under ``frameworks`` or when one
of the requirement's tests maps to it in the framework's crosswalk (see
:mod:`airisk.taxonomy.frameworks`). The tests of a requirement are derived from its checks:
``hazard:<code>`` for its hazards, and the kinds of evidence its suites read (``SUITE_TESTS``).
The pack itself is evidence too (register, QRA, documented provenance): items only it covers are
``documented``. An item nothing covers is a gap.
"""

from __future__ import annotations

import fnmatch

from pydantic import BaseModel, Field

from airisk.governance.check import STATUS_ORDER, CheckReport
from airisk.governance.register import Check, Register, Requirement

# (suite field, glob on its value) -> airisk test ids that suite produces evidence for.
SUITE_TESTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("dataset", "jbb*", ("attack:jailbreak",)),
    ("dataset", "*jailbreak*", ("attack:jailbreak",)),
    ("dataset", "xstest*", ("over_refusal",)),
    ("kind", "redteam", ("attack:jailbreak", "attack:obfuscation", "attack:multiturn")),
    ("kind", "agent", ("agent:unsafe_action", "agent:indirect_injection")),
    ("gate_in_loop", "True", ("guard:action_gate",)),
]
PACK_TESTS = {"governance:register", "governance:pack", "data:provenance"}


def check_tests(req: Requirement, check: Check) -> set[str]:
    tests = {f"hazard:{h}" for h in ([check.hazard] if check.hazard else req.hazards)}
    if check.metric == "over_refusal_rate":
        tests.add("over_refusal")
    for field, pattern, ids in SUITE_TESTS:
        value = getattr(check.suite, field)
        if value is not None and fnmatch.fnmatchcase(str(value), pattern):
            tests.update(ids)
    return tests


class ItemStatus(BaseModel):
    id: str
    name: str
    group: str | None = None
    status: str  # met | not met | not measured | documented | gap
    requirements: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=list)


class FrameworkCoverage(BaseModel):
    id: str
    name: str
    version: str
    basis: str
    source: str
    items: list[ItemStatus]

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def gaps(self) -> list[ItemStatus]:
        return [i for i in self.items if i.status == "gap"]


def register_coverage(register: Register, report: CheckReport, *, has_risks: bool | None = None,
                      judge_cards: bool = False) -> list[FrameworkCoverage]:
    """Coverage of every framework (ATLAS included when its shared data is found) by this register."""
    from airisk.taxonomy.frameworks import frameworks

    status = {r.id: r.status for r in report.requirements}
    pack_tests = set(PACK_TESTS)
    if has_risks if has_risks is not None else bool(register.risks):
        pack_tests.add("governance:qra")
    if judge_cards:
        pack_tests.add("judge:card")
    req_tests = {r.id: set().union(*(check_tests(r, c) for c in r.checks)) for r in register.requirements}
    out = []
    for fw in frameworks().values():
        items = []
        for item in fw.items:
            reqs, tests = [], set()
            for r in register.requirements:
                hit = fw.covered_by(item.id, req_tests[r.id])
                if hit or item.id in r.frameworks.get(fw.id, []):
                    reqs.append(r.id)
                    tests.update(hit)
            docs = fw.covered_by(item.id, pack_tests)
            if reqs:
                st = max((status[r] for r in reqs), key=STATUS_ORDER.__getitem__)  # worst wins: one failing requirement flags the item
            else:
                st = "documented" if docs else "gap"
            items.append(ItemStatus(id=item.id, name=item.name, group=item.group, status=st, requirements=reqs,
                                    tests=sorted(tests | set(docs))))
        out.append(FrameworkCoverage(id=fw.id, name=fw.name, version=fw.version, basis=fw.basis, source=fw.source,
                                     items=items))
    return out
