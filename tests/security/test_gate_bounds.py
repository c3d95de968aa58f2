"""Issue 11 item 2 (gate side): bounded work per decision, and a fuzz test with bounded time and
memory per case.

Time bounds here are deliberately loose safety nets (seconds, for a shared CI machine) that the
unbounded code failed by orders of magnitude (5.45 s and >1.5 GB for a 173-byte snippet); the
measured figures come from ``benchmarks/gate_latency.py --adversarial``.
"""

from __future__ import annotations

import base64
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from airisk.guard import Action, ActionGate

TIME_BOUND_S = 2.0
MEMORY_BOUND = 64 * 2**20


@pytest.fixture(scope="module")
def gate() -> ActionGate:
    return ActionGate.default()


def measured(gate, tool, args):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        d = gate.decide(Action(tool=tool, arguments=args))
    finally:
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return d, elapsed, peak


@pytest.mark.parametrize("n", [24, 30])
def test_string_doubling_snippet_is_bounded(gate, n):
    code = "import os\na='x'\n" + "a=a+a\n" * n + "os.system(a)"
    d, elapsed, peak = measured(gate, "python", {"code": code})
    assert d.verdict != "ALLOW" and "python.too_large_value" in d.rule_ids, d
    assert elapsed < TIME_BOUND_S and peak < 8 * 2**20, (elapsed, peak)


def _fill(unit: str, limit: int) -> str:
    return unit * max(1, (limit - 64) // len(unit))


def _hostile(limit: int) -> list[tuple[str, dict]]:
    chain = "rm -rf /"
    for _ in range(10):
        chain = f"echo {base64.b64encode(chain.encode()).decode()} | base64 -d | sh"
    deep: dict = {"command": "ls"}
    for _ in range(1500):
        deep = {"x": deep}
    return [
        ("python", {"code": "import os\na='x'\n" + _fill("a=a+a\n", limit) + "os.system(a)"}),
        ("python", {"code": _fill("exec(__import__('base64').b64decode('cm0gLXJmIC8='))\n", limit)}),
        ("shell", {"command": "a=x\n" + _fill("a=$a$a\n", limit) + "rm -rf $a"}),
        ("shell", {"command": chain}),
        ("shell", {"command": "$(" * 3000 + "ls" + ")" * 3000}),
        ("shell", {"command": "echo rm -rf / " + _fill("| cat ", limit - 40) + "| sh"}),
        ("shell", {"command": _fill("cat > /tmp/a <<EOF\nx\nEOF\nsh /tmp/a\n", limit)}),
        ("shell", {"command": _fill("f(){ f|f& };", limit)}),
        ("shell", {"command": "printf '" + _fill("\\x41", limit - 20) + "' | sh"}),
        ("sql", {"query": "SELECT " + "(" * 5000 + "1" + ")" * 5000}),
        ("sql", {"query": _fill("DELETE FROM t;", limit)}),
        ("sql", {"query": "EXEC(" + _fill("'a'+", limit - 10) + "'b')"}),
        ("shell", deep),
        ("http_request", {"url": "http://" + _fill("1.", 100_000) + "1/"}),
    ]


def test_adversarial_payloads_fail_closed_within_bounds(gate):
    limit = gate.policy.limits.max_script_chars
    for tool, args in _hostile(limit):
        d, elapsed, peak = measured(gate, tool, args)
        assert d.verdict != "ALLOW", (tool, str(args)[:80], d)
        assert "gate.error" not in d.rule_ids, d
        assert elapsed < TIME_BOUND_S and peak < MEMORY_BOUND, (tool, str(args)[:80], elapsed, peak)


def test_deadline_is_enforced_inside_the_analysis():
    # a tiny budget: hostile work that used to run for seconds stops at the deadline, failing closed
    g = ActionGate.default(check_timeout_ms=5)
    code = "import os\na='x'\n" + _fill("a=a+a\n", g.policy.limits.max_script_chars) + "os.system(a)"
    d, elapsed, _ = measured(g, "python", {"code": code})
    assert d.verdict == "BLOCK" and d.rule_ids == ["gate.timeout"] and "fail closed" in d.reasons[0], d
    assert elapsed < TIME_BOUND_S


# --- fuzzing -----------------------------------------------------------------------------------

_ALPHABET = list("rm -f/$'\"`(){}|;&<>\\\n~.*aZ0=IFSbase64dsh:@%#!")
_SNIPPETS = ["rm -rf /", "$(echo cm0gLXJmIC8K|base64 -d)", "| sh", "<<< ", "xargs rm", "curl http://169.254.169.254/",
             "import os; os.system('x')", "DROP TABLE t", "WITH x AS (DELETE FROM t RETURNING *) SELECT 1",
             "file://localhost/etc/shadow", "http://10.1/", "AKIAABCDEFGHIJKLMNOP", "${PATH:0:1}", "'", "\"", "\\",
             "<<EOF\n", "EOF", "`", "$((1+1))", "\u3002", "\x00", "\ud800"]
text = st.one_of(st.text(alphabet=st.sampled_from(_ALPHABET), max_size=200),
                 st.lists(st.sampled_from(_SNIPPETS), max_size=8).map(" ".join),
                 st.text(max_size=100))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)),
    max_leaves=20)
arg_names = st.one_of(st.sampled_from(["command", "cmd", "args", "argv", "code", "query", "url", "path", "paths",
                                       "headers", "body", "target_url", "cwd", "amount", "to"]), text)
tools = st.sampled_from(["shell", "python", "sql", "http_request", "read_file", "write_file", "delete_file",
                         "list_files", "send_email", "make_payment", "web_search", "calendar", "unknown_tool"])


_FUZZ_GATE = ActionGate.default()  # decisions without a session id share no state


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool=tools, args=st.dictionaries(arg_names, json_values, max_size=5))
def test_fuzz_any_action_is_decided_within_bounds(tool, args):
    d, elapsed, peak = measured(_FUZZ_GATE, tool, args)
    assert d.verdict in ("ALLOW", "REVIEW", "BLOCK") and d.reasons
    assert "gate.error" not in d.rule_ids, (tool, args, d.reasons)
    assert elapsed < TIME_BOUND_S and peak < MEMORY_BOUND, (tool, args, elapsed, peak)


@pytest.mark.parametrize("cmd", ["| sh <<<  \ud800", "printf '\ud800' | sh", "cat <<EOF | sh\n\ud800\nEOF"])
def test_lone_surrogates_in_evaluated_text_do_not_raise(gate, cmd):
    # found by the fuzz test: text evaluated for an interpreter held a lone surrogate
    d = gate.decide(Action(tool="shell", arguments={"command": cmd}))
    assert "gate.error" not in d.rule_ids, d


_DANGEROUS = [("shell", {"command": "rm -rf /"}), ("python", {"code": "import shutil; shutil.rmtree('/')"}),
              ("sql", {"query": "DROP TABLE users"}), ("http_request", {"url": "http://169.254.169.254/"}),
              ("read_file", {"path": "/etc/shadow"})]


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(_DANGEROUS), extra=st.dictionaries(arg_names, json_values, max_size=4))
def test_fuzz_extra_arguments_never_turn_a_block_into_allow(base, extra):
    tool, args = base
    merged = {**extra, **args}  # the dangerous argument stays; anything may be added around it
    d = _FUZZ_GATE.decide(Action(tool=tool, arguments=merged))
    assert d.verdict == "BLOCK", (tool, merged, d)
