"""airisk: assess and control the risk of AI systems.

The public API is this module's functions; the ``airisk`` command line calls exactly these::

    import airisk

    result = airisk.evaluate("ailuminate-demo-en_us", "openai:model=m,base_url=http://localhost:8000/v1",
                             judge="offline", limit=100)
    print(result.table())                       # per-hazard counts and violating rates
    airisk.report(result.run_id, "report/")     # report.html, report.json, risk cards
    print(airisk.gate(result.run_id).status)    # pass | yellow | red | error

Attributes load lazily (PEP 562), so ``import airisk`` does not import the store, SciPy or the
model libraries until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_EXPORTS: dict[str, str] = {
    "evaluate": "airisk._api:evaluate",
    "evaluate_async": "airisk._api:evaluate_async",
    "resume": "airisk._api:resume",
    "resume_async": "airisk._api:resume_async",
    "judge_stored": "airisk._api:judge_stored",
    "run_result": "airisk._api:run_result",
    "score": "airisk._api:score",
    "report": "airisk._api:report",
    "gate": "airisk._api:gate",
    "compare": "airisk._api:compare",
    "redteam": "airisk._api:redteam",
    "redteam_async": "airisk._api:redteam_async",
    "run_agents": "airisk._api:run_agents",
    "run_agents_async": "airisk._api:run_agents_async",
    "simulate": "airisk._api:simulate",
    "simulate_async": "airisk._api:simulate_async",
    "load_dataset": "airisk._api:load_dataset",
    "make_system": "airisk._api:make_system",
    "make_judge": "airisk._api:make_judge",
    "open_store": "airisk._api:open_store",
    "RunResult": "airisk._api:RunResult",
    "HazardCounts": "airisk._api:HazardCounts",
    "JudgeCounts": "airisk._api:JudgeCounts",
    "ReportResult": "airisk._api:ReportResult",
    "JudgeRunResult": "airisk._api:JudgeRunResult",
    "AgentRunResult": "airisk._api:AgentRunResult",
    "RunConfig": "airisk.engine.config:RunConfig",
    "Store": "airisk.store.store:Store",
    "Judge": "airisk.judges.base:Judge",
    "System": "airisk.systems.base:System",
    "Item": "airisk.types:Item",
    "AiriskError": "airisk.errors:AiriskError",
}

__all__ = [
    "__version__",
    "evaluate",
    "evaluate_async",
    "resume",
    "resume_async",
    "judge_stored",
    "run_result",
    "score",
    "report",
    "gate",
    "compare",
    "redteam",
    "redteam_async",
    "run_agents",
    "run_agents_async",
    "simulate",
    "simulate_async",
    "load_dataset",
    "make_system",
    "make_judge",
    "open_store",
    "RunResult",
    "HazardCounts",
    "JudgeCounts",
    "ReportResult",
    "JudgeRunResult",
    "AgentRunResult",
    "RunConfig",
    "Store",
    "Judge",
    "System",
    "Item",
    "AiriskError",
]

if TYPE_CHECKING:  # static checkers and IDEs see the real objects
    from airisk._api import (
        AgentRunResult,
        HazardCounts,
        JudgeCounts,
        JudgeRunResult,
        ReportResult,
        RunResult,
        compare,
        evaluate,
        evaluate_async,
        gate,
        judge_stored,
        load_dataset,
        make_judge,
        make_system,
        open_store,
        redteam,
        redteam_async,
        report,
        resume,
        resume_async,
        run_agents,
        run_agents_async,
        run_result,
        score,
        simulate,
        simulate_async,
    )
    from airisk.engine.config import RunConfig
    from airisk.errors import AiriskError
    from airisk.judges.base import Judge
    from airisk.store.store import Store
    from airisk.systems.base import System
    from airisk.types import Item


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'airisk' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
