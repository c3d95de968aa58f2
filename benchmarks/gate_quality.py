"""Action-gate quality on scenarios and actions the rules were not developed on, old and new side by side.

    AIRISK_DATA_PATH=/work/shared/data python benchmarks/gate_quality.py [--baseline c1510fc] [--policy builtin:default]

Headline: RedCode-Exec scenarios held out BY SCENARIO + our held-out benign actions. Positives are
RedCode-Exec snippets (all risky; Python source to the ``python`` tool, Bash to the ``shell``
tool); negatives are everyday developer / office-agent actions.

The split is fixed here, before any rule was written against it:
- RedCode: the 14 shared scenario ids form 13 groups (26 is a variant of 3 and stays with it);
  ``random.Random(SPLIT_SEED).shuffle`` orders them and the first ``N_HELD_OUT`` groups are held
  out. Rules were developed only on the other (dev) scenarios. If the secret RedCode holdout
  (``$AIRISK_DATA_PATH/holdout/redcode``) is present, it is reported as a second unseen set.
- Benign: ``benign_actions.jsonl`` (older corpus, the dev set) and ``benign_actions_holdout.jsonl``
  (written for this benchmark before the gate was run on it; held out).

"Stopped" = BLOCK or REVIEW (REVIEW halts the action for a human); "strict" counts BLOCK only.
Old = the gate at git ``--baseline`` (extracted with ``git archive`` and run in a subprocess on the
same cases); new = the gate in this checkout. Agent-SafetyBench tool-call cases are reported
separately (secondary: 73 cases, many pairs identical across labels).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import io
from pathlib import Path

from airisk.guard import Action, ActionGate
from airisk.guard.policy import load_policy


def data_dir(name: str) -> Path | None:
    root = os.environ.get("AIRISK_DATA_PATH")
    if not root:
        return None
    p = Path(root) / name
    return p if p.is_dir() else None


REPO = Path(__file__).resolve().parents[1]
BENIGN_DIR = REPO / "src" / "airisk" / "guard" / "data"
SPLIT_SEED = 20261128
# RedCode-Exec shared scenario ids, grouped so near-duplicates stay on one side of the split.
SCENARIO_GROUPS = [(1,), (3, 26), (5,), (7,), (9,), (11,), (13,), (15,), (17,), (19,), (21,), (23,), (25,)]
N_HELD_OUT = 5
# RedCode-Exec mixes two kinds of "risky" snippet (from the scenario labels in PROVENANCE.md, fixed
# before any results): code that does something harmful when run (exfiltration, deletion,
# reconnaissance, ...) and code with a security DEFECT whose execution has no harmful effect
# (flawed regex, weak PRNG, duplicate keys, missing default case ...). An effect-based gate can only
# be expected to stop the first kind; figures are also printed for it separately.
CODE_DEFECT_SCENARIOS = frozenset({12, 15, 16, 17, 19, 20, 22, 23, 24, 25})


def held_out_scenarios() -> set[int]:
    groups = list(SCENARIO_GROUPS)
    random.Random(SPLIT_SEED).shuffle(groups)
    return {sid for g in groups[:N_HELD_OUT] for sid in g}


def load_benign(benign_dir: Path = BENIGN_DIR) -> list[dict]:
    out = []
    for name, split in (("benign_actions.jsonl", "dev"), ("benign_actions_holdout.jsonl", "test")):
        path = benign_dir / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append({**json.loads(line), "split": split})
    return out


def redcode_cases(root: Path, split: str | None = None) -> list[dict]:
    held = held_out_scenarios()
    out = []
    with open(root / "redcode_exec.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            tool, key = ("python", "code") if r["language"] == "python" else ("shell", "command")
            sp = split or ("test" if r["risky_id"] in held else "dev")
            out.append({"id": f"redcode-{r['language']}-{r['Index']}", "scenario": r["risky_id"], "label": r["risky_label"],
                        "lang": r["language"], "split": sp, "actions": [Action(tool=tool, arguments={key: r["Code"]})]})
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
                            "split": "asb", "actions": actions})
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


def evaluate(policy: str, benign_dir: Path) -> list[dict]:
    """Every case's verdict with the gate importable as ``airisk`` in this interpreter."""
    gate = ActionGate.from_policy(policy)
    results = []
    for b in load_benign(benign_dir):
        v, rules = worst(gate, [Action(tool=b["tool"], arguments=b["arguments"], role=b.get("role"))])
        results.append({"source": "benign", "split": b["split"], "positive": False, "verdict": v, "rules": rules,
                        "id": b["id"], "category": b["category"], "arguments": b["arguments"]})
    rc_root = data_dir("redcode")
    if rc_root is None:
        print("RedCode data not found (set AIRISK_DATA_PATH); skipping", file=sys.stderr)
    else:
        cases = redcode_cases(rc_root)
        hold = data_dir("holdout/redcode")
        if hold is not None and (hold / "redcode_exec.jsonl").exists():
            cases += redcode_cases(hold, split="holdout")
        for c in cases:
            v, rules = worst(gate, c["actions"])
            results.append({"source": "redcode", "split": c["split"], "positive": True, "verdict": v, "rules": rules,
                            "id": c["id"], "scenario": c["scenario"], "lang": c["lang"], "label": c["label"]})
    asb_root = data_dir("agent-safetybench")
    if asb_root is not None:
        asb_gate = ActionGate.from_policy(asb_policy(asb_root))
        for c in asb_cases(asb_root):
            v, rules = worst(asb_gate, c["actions"])
            results.append({"source": "asb", "split": "asb", "positive": c["fulfillable"] == 0, "verdict": v, "rules": rules,
                            "id": c["id"], "risk": c["risk"]})
    return results


def baseline_results(ref: str, policy: str) -> list[dict] | None:
    """Run this benchmark's evaluation with the airisk package of git ``ref`` (old rules) in a
    subprocess, on the same cases (the benign files come from this checkout)."""
    try:
        blob = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], check=True, capture_output=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"baseline {ref}: cannot extract ({e}); old column skipped", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory(prefix="gate-baseline-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(tmp, filter="data")
        out = Path(tmp) / "results.jsonl"
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        cmd = [sys.executable, __file__, "--evaluate-only", str(out), "--policy", policy, "--benign-dir", str(BENIGN_DIR)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"baseline {ref} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
            return None
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def row_metrics(results: list[dict], sources: tuple, splits: tuple) -> dict:
    return metrics([(r["positive"], r["verdict"]) for r in results if r["source"] in sources and r["split"] in splits])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="builtin:default")
    ap.add_argument("--baseline", default="c1510fc", help="git ref of the old gate (default: the commit before the effects rework)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", help="write per-case results (new gate) here")
    ap.add_argument("--show-misses", type=int, default=0, help="print this many missed positives / false positives (dev only)")
    ap.add_argument("--evaluate-only", help=argparse.SUPPRESS)
    ap.add_argument("--benign-dir", default=str(BENIGN_DIR), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.evaluate_only:  # subprocess mode for the baseline
        res = evaluate(a.policy, Path(a.benign_dir))
        with open(a.evaluate_only, "w", encoding="utf-8") as f:
            for r in res:
                f.write(json.dumps(r, default=str) + "\n")
        return 0

    new = evaluate(a.policy, Path(a.benign_dir))
    old = None if a.no_baseline else baseline_results(a.baseline, a.policy)
    held = sorted(held_out_scenarios())
    print(f"policy: {a.policy}   split seed {SPLIT_SEED}: held-out RedCode scenarios {held}; "
          f"dev scenarios {sorted({s for g in SCENARIO_GROUPS for s in g} - set(held))}")
    n = collections.Counter((r["source"], r["split"]) for r in new)
    print("cases:", ", ".join(f"{k[0]}/{k[1]}={v}" for k, v in sorted(n.items())))
    print()
    print("RedCode-Exec stopped (BLOCK or REVIEW) by scenario, old -> new:")
    by_new, by_old = collections.defaultdict(list), collections.defaultdict(list)
    for r in new:
        if r["source"].startswith("redcode"):
            by_new[(r["split"], r["scenario"], r["label"])].append(r["verdict"])
    for r in old or []:
        if r["source"].startswith("redcode"):
            by_old[(r["split"], r["scenario"], r["label"])].append(r["verdict"])
    for key in sorted(by_new, key=lambda k: (k[0] != "test", k[1])):
        vs, os_ = by_new[key], by_old.get(key, [])
        o = f"{sum(v != 'ALLOW' for v in os_) / len(os_):6.1%}" if os_ else "   n/a"
        kind = "defect" if key[1] in CODE_DEFECT_SCENARIOS else "effect"
        print(f"  {key[0]:7s} {key[1]:>2} {kind}  {o} -> {sum(v != 'ALLOW' for v in vs) / len(vs):6.1%}  n={len(vs):3d}  {key[2][:62]}")
    print()
    for r in new + (old or []):
        if r["source"] == "redcode" and r["scenario"] in CODE_DEFECT_SCENARIOS:
            r["source"] = "redcode-defect"
    rows = [("HEADLINE held-out scenarios + held-out benign", ("redcode", "redcode-defect", "benign"), ("test",)),
            ("held-out EFFECT scenarios (not code-defect ones) + held-out benign", ("redcode", "benign"), ("test",)),
            ("dev scenarios + dev benign (tuned on)", ("redcode", "redcode-defect", "benign"), ("dev",)),
            ("dev EFFECT scenarios + dev benign (tuned on)", ("redcode", "benign"), ("dev",)),
            ("held-out benign only (FPR)", ("benign",), ("test",)),
            ("dev benign only (FPR)", ("benign",), ("dev",))]
    if any(r["split"] == "holdout" for r in new):
        rows.insert(2, ("secret RedCode holdout + held-out benign", ("redcode", "redcode-defect", "benign"), ("holdout", "test")))
    if any(r["source"] == "asb" for r in new):
        rows.append(("Agent-SafetyBench tool calls (secondary)", ("asb",), ("asb",)))
    for title, sources, splits in rows:
        print(title)
        for mode in ("stopped", "strict"):
            if old is not None:
                print(f"  old {mode:7s}: {fmt(row_metrics(old, sources, splits)[mode])}")
            print(f"  new {mode:7s}: {fmt(row_metrics(new, sources, splits)[mode])}")
        print()
    fps = [r for r in new if r["source"] == "benign" and r["verdict"] != "ALLOW"]
    if fps:
        print("benign actions stopped by rule (new):", dict(collections.Counter(x for r in fps for x in set(r["rules"])).most_common(12)))
    if a.show_misses:  # dev cases only: looking at held-out misses would turn them into dev cases
        print("\nfalse positives (dev benign):")
        for r in [r for r in fps if r["split"] == "dev"][:a.show_misses]:
            print(" ", r["verdict"], r["rules"][:3], json.dumps(r["arguments"])[:160])
        print("\nmissed positives (dev scenarios):")
        for r in [r for r in new if r["positive"] and r["source"].startswith("redcode") and r["split"] == "dev"
                  and r["verdict"] == "ALLOW"][:a.show_misses]:
            print(" ", r["id"], r["label"][:60])
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            for r in new:
                f.write(json.dumps(r, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
