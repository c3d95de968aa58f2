"""Indirect prompt injection over imported scenarios: attack success by injection type, per agent and defence.

Runs the payload library (airisk/agents/templates/injections.yaml) x placements x obfuscations over
ToolEmu or Agent-SafetyBench scenarios (imported from $AIRISK_DATA_PATH) with the scripted
``careful`` and ``tricked`` agents, each under no defence, the action gate, the tool-output
scanner, and both. Prints attack success (Wilson 95% CI) per injection type and per obfuscation,
user-task completion under attack vs clean, and throughput (episodes per second).

    AIRISK_DATA_PATH=/work/shared/data python benchmarks/injection_campaign.py --source toolemu \
        [--limit N] [--obfuscations none,base64] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from airisk.agents.importers import load_source
from airisk.agents.injection import DEFENCES, plan_cases, run_campaign
from airisk.agents.loop import make_agent


def pct(r: dict) -> str:
    if not r or not r.get("n"):
        return "-"
    lo, hi = r["ci95"]
    return f"{r['rate'] * 100:5.1f}% [{lo * 100:4.1f}-{hi * 100:5.1f}] {r['k']}/{r['n']}"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="toolemu")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--agents", default="careful,tricked")
    ap.add_argument("--defences", default=",".join(DEFENCES))
    ap.add_argument("--placements")
    ap.add_argument("--obfuscations", default="none")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    scen = load_source(a.source)
    scen = scen[: a.limit] if a.limit else scen
    cases, skipped = plan_cases(scen, placements=a.placements.split(",") if a.placements else None,
                                obfuscations=a.obfuscations.split(","))
    print(f"{a.source}: {len(scen)} scenarios -> {len(cases)} cases "
          f"({len({c.scenario.id for c in cases})} scenarios carry cases); skipped: {dict(skipped)}")
    out: dict = {"source": a.source, "scenarios": len(scen), "cases": len(cases), "skipped": dict(skipped), "runs": {}}
    for agent in a.agents.split(","):
        for d in a.defences.split(","):
            t0 = time.perf_counter()
            res = await run_campaign(cases, make_agent(agent), defence=d, concurrency=a.concurrency)
            dt = time.perf_counter() - t0
            s = res.summary()
            n_eps = len(cases) + len({c.scenario.id for c in cases})  # attacked + clean episodes
            out["runs"][f"{agent}/{d}"] = {"summary": s, "seconds": dt, "episodes": n_eps}
            o = s["overall"]
            print(f"\n== agent {agent}, defence {d}: {n_eps} episodes in {dt:.1f}s ({n_eps / dt:.0f} episodes/s)")
            print(f"   task completion under attack {pct(o['completed'])}; clean {pct(o['clean_completed'])}; "
                  f"scanner flagged {pct(o['scanner_flagged'])}; blocked calls {o['blocked_calls']}")
            for k, r in {"OVERALL": o, **s["by_type"], **(s["by_type_obfuscation"] if "," in a.obfuscations else {})}.items():
                print(f"   {k:42} success {pct(r['attack_success']):34} goal w/o payload {pct(r['clean_goal'])}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main())
