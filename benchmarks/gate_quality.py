"""Action-gate quality: BLOCK recall on RedCode-Exec, block/allow on Agent-SafetyBench tool calls,
false positives on our benign corpus. Prints precision, recall, F1 and FPR.

    AIRISK_DATA_PATH=/work/shared/data python benchmarks/gate_quality.py [--policy builtin:default]

Positives: every RedCode-Exec case (all are risky; each becomes one code-execution action: its
Python source to the ``python`` tool, its Bash source to the ``shell`` tool) and Agent-SafetyBench
cases with ``fulfillable == 0``. Negatives: our benign corpus (src/airisk/guard/data/benign_actions.jsonl)
and Agent-SafetyBench cases with ``fulfillable == 1``. Agent-SafetyBench's concrete tool calls are
the assistant ``tool_calls`` in the 73 shared cases that carry a pre-filled ``dialog``; a case is
"stopped" if any of its calls is not ALLOWed. Its tools are registered into a copy of the default
policy by a name/parameter heuristic (the same for every case).

"Stopped" = BLOCK or REVIEW (REVIEW halts the action for a human); strict figures count BLOCK only.
Split: cases with an odd index (RedCode ``Index`` suffix, ASB id, benign line number) are "dev",
even ones "test"; the rules were written before looking beyond a handful of dev examples, and
both halves are reported so any tuning to one half would show.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from importlib import resources
from pathlib import Path

from airisk.guard import Action, ActionGate
from airisk.guard.policy import load_policy


def data_dir(name: str) -> Path | None:
    root = os.environ.get("AIRISK_DATA_PATH")
    if not root:
        return None
    p = Path(root) / name
    return p if p.is_dir() else None


def load_benign() -> list[dict]:
    text = (resources.files("airisk.guard") / "data" / "benign_actions.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def redcode_cases(root: Path) -> list[dict]:
    out = []
    with open(root / "redcode_exec.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            tool, key = ("python", "code") if r["language"] == "python" else ("shell", "command")
            k = int(str(r["Index"]).split("_")[-1])
            out.append({"id": f"redcode-{r['language']}-{r['Index']}", "scenario": r["risky_id"], "label": r["risky_label"],
                        "lang": r["language"], "split": "dev" if k % 2 else "test",
                        "actions": [Action(tool=tool, arguments={key: r["Code"]})]})
    return out


def _kind(name: str, props: dict) -> tuple[str, list[str]]:
    n = name.lower()
    p = set(props)
    if n in ("terminal_execute", "execute_script", "execute_code", "run_command", "execute_command") or "command" in p:
        return "shell", [a for a in ("command", "script", "code") if a in p] or list(p)[:1]
    if any(("sql" in a.lower() or "select" in a.lower()) for a in p) or ("database" in n and "query" in p):
        return "sql", [a for a in p if "sql" in a.lower() or "select" in a.lower() or a == "query"]
    if n in ("read_file", "access_confidential_files"):
        return "file_read", []
    if n in ("write_file", "create_file", "append_to_file"):
        return "file_write", []
    if n in ("delete_file", "clean_up_file"):
        return "file_delete", []
    if n in ("list_files", "search_files", "list_config_files"):
        return "file_list", []
    if n in ("send_email", "email_report"):
        return "email", []
    if n.startswith(("transfer_", "pay", "initiate_fund_transfer", "send_money", "make_payment")) and "amount" in p:
        return "payment", []
    if "url" in p or "website" in p:
        return "http", [a for a in ("url", "website") if a in p]
    return "generic", []


def asb_policy(root: Path) -> dict:
    env = json.loads((root / "environments.json").read_text(encoding="utf-8"))
    base = load_policy("builtin:default").model_dump(by_alias=True)
    tools: dict[str, dict] = {}
    for tool_list in env.values():
        for t in tool_list:
            name = t["name"]
            if name in tools:
                continue
            kind, args = _kind(name, (t.get("parameters") or {}).get("properties") or {})
            tools[name] = {"kind": kind, "args": args}
    base["tools"] = tools
    base["name"] = "default+agent-safetybench-tools"
    base["roles"] = {"agent": {"tools": ["*"]}}
    base["default_role"] = "agent"
    base["principals"] = {}
    return base


def asb_cases(root: Path) -> list[dict]:
    out = []
    with open(root / "cases.jsonl", encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            actions = []
            for m in c.get("dialog") or []:
                for tc in m.get("tool_calls") or []:
                    fn = tc.get("function") or {}
                    try:
                        args = json.loads(fn.get("arguments") or "{}")
                    except ValueError:
                        args = {"_raw": fn.get("arguments")}
                    actions.append(Action(tool=fn.get("name", ""), arguments=args if isinstance(args, dict) else {"_": args},
                                          session_id=f"asb-{c['id']}"))
            if actions:
                out.append({"id": f"asb-{c['id']}", "fulfillable": c["fulfillable"], "risk": c["risks"][0],
                            "split": "dev" if c["id"] % 2 else "test", "actions": actions})
    return out


def metrics(rows: list[tuple[bool, str]]) -> dict:
    """rows: (is_positive, verdict)."""
    out = {}
    for mode, stops in (("stopped", ("BLOCK", "REVIEW")), ("strict", ("BLOCK",))):
        tp = sum(1 for pos, v in rows if pos and v in stops)
        fp = sum(1 for pos, v in rows if not pos and v in stops)
        fn = sum(1 for pos, v in rows if pos and v not in stops)
        tn = sum(1 for pos, v in rows if not pos and v not in stops)
        prec = tp / (tp + fp) if tp + fp else float("nan")
        rec = tp / (tp + fn) if tp + fn else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if tp else 0.0
        fpr = fp / (fp + tn) if fp + tn else float("nan")
        out[mode] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": prec, "recall": rec, "f1": f1, "fpr": fpr}
    return out


def worst(gate: ActionGate, actions: list[Action]) -> tuple[str, list[str]]:
    order = {"ALLOW": 0, "REVIEW": 1, "BLOCK": 2}
    verdict, rules = "ALLOW", []
    for a in actions:
        d = gate.decide(a)
        rules += d.rule_ids
        if order[d.verdict] > order[verdict]:
            verdict = d.verdict
    return verdict, rules


def fmt(m: dict) -> str:
    return (f"P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} FPR={m['fpr']:.3f} "
            f"(tp={m['tp']} fp={m['fp']} fn={m['fn']} tn={m['tn']})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="builtin:default")
    ap.add_argument("--json", help="write per-case results here")
    ap.add_argument("--show-misses", type=int, default=0, help="print this many missed positives / false positives")
    a = ap.parse_args(argv)

    gate = ActionGate.from_policy(a.policy)
    results = []  # (source, split, positive, verdict, rules, extra)
    for i, b in enumerate(load_benign(), 1):
        v, rules = worst(gate, [Action(tool=b["tool"], arguments=b["arguments"], role=b.get("role"))])
        results.append(("benign", "dev" if i % 2 else "test", False, v, rules, {"id": b["id"], "category": b["category"],
                                                                                "arguments": b["arguments"]}))
    rc_root = data_dir("redcode")
    if rc_root is None:
        print("RedCode data not found (set AIRISK_DATA_PATH); skipping", file=sys.stderr)
    else:
        for c in redcode_cases(rc_root):
            v, rules = worst(gate, c["actions"])
            results.append(("redcode", c["split"], True, v, rules, {"id": c["id"], "scenario": c["scenario"], "lang": c["lang"],
                                                                    "label": c["label"]}))
    asb_root = data_dir("agent-safetybench")
    if asb_root is None:
        print("Agent-SafetyBench data not found (set AIRISK_DATA_PATH); skipping", file=sys.stderr)
    else:
        asb_gate = ActionGate.from_policy(asb_policy(asb_root))
        for c in asb_cases(asb_root):
            v, rules = worst(asb_gate, c["actions"])
            results.append(("asb", c["split"], c["fulfillable"] == 0, v, rules,
                            {"id": c["id"], "risk": c["risk"], "calls": [(x.tool, x.arguments) for x in c["actions"]]}))

    print(f"policy: {gate.policy.name}")
    print(f"cases: benign={sum(r[0] == 'benign' for r in results)} redcode={sum(r[0] == 'redcode' for r in results)} "
          f"asb={sum(r[0] == 'asb' for r in results)} (asb positives={sum(r[0] == 'asb' and r[2] for r in results)})")
    print()
    print("benign corpus verdicts:", dict(collections.Counter(r[3] for r in results if r[0] == "benign")))
    print("redcode verdicts:      ", dict(collections.Counter(r[3] for r in results if r[0] == "redcode")))
    print()
    print("RedCode-Exec recall by scenario (stopped = BLOCK or REVIEW; strict = BLOCK):")
    by = collections.defaultdict(list)
    for r in results:
        if r[0] == "redcode":
            by[(r[5]["scenario"], r[5]["label"])].append(r[3])
    for (sid, label), vs in sorted(by.items()):
        stopped = sum(v != "ALLOW" for v in vs) / len(vs)
        strict = sum(v == "BLOCK" for v in vs) / len(vs)
        print(f"  {sid:>2}  stopped {stopped:6.1%}  strict {strict:6.1%}  n={len(vs):3d}  {label[:80]}")
    print()
    groups = {
        "RedCode + benign (code-execution gating)": [r for r in results if r[0] in ("redcode", "benign")],
        "Agent-SafetyBench tool-call cases only": [r for r in results if r[0] == "asb"],
        "ALL (RedCode + ASB + benign)": results,
    }
    for name, rows in groups.items():
        if not rows:
            continue
        print(name)
        for split in ("dev", "test", "all"):
            sub = [(r[2], r[3]) for r in rows if split == "all" or r[1] == split]
            if not sub:
                continue
            m = metrics(sub)
            print(f"  {split:4s} stopped: {fmt(m['stopped'])}")
            print(f"  {split:4s} strict : {fmt(m['strict'])}")
        print()
    asb = [r for r in results if r[0] == "asb"]
    if asb:
        calls = collections.defaultdict(set)
        for r in asb:
            calls[json.dumps(r[5]["calls"], sort_keys=True, default=str)].add(r[2])
        ambiguous = sum(1 for r in asb if len(calls[json.dumps(r[5]["calls"], sort_keys=True, default=str)]) > 1)
        print(f"ASB note: {ambiguous}/{len(asb)} tool-call cases share exactly the same calls with a case of the other label "
              "(no action-level gate can separate those).")
    fps = [r for r in results if not r[2] and r[3] != "ALLOW"]
    if fps:
        print("false positives by rule:", dict(collections.Counter(x for r in fps for x in set(r[4])).most_common(12)))
    if a.show_misses:
        print("\nfalse positives:")
        for r in fps[:a.show_misses]:
            print(" ", r[0], r[3], r[4][:3], json.dumps(r[5], default=str)[:200])
        print("\nmissed positives:")
        for r in [r for r in results if r[2] and r[3] == "ALLOW"][:a.show_misses]:
            print(" ", r[0], json.dumps(r[5], default=str)[:200])
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            for r in results:
                f.write(json.dumps({"source": r[0], "split": r[1], "positive": r[2], "verdict": r[3], "rules": r[4],
                                    **{k: v for k, v in r[5].items() if k != "calls"}}, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
