"""Fuzzing the guard and gate policy loaders: any text or structure either loads or is a ConfigError,
within bounded time and memory per case (never another exception, never a hang)."""

from __future__ import annotations

import time
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airisk.errors import ConfigError
from airisk.guard.policy import load_policy as load_guard_policy
from airisk.scoring.zones import load_policy as load_gate_policy

FRAGMENTS = ["name: x\n", "tools:\n", "  t:\n", "    kind: shell\n", "    constraints:\n", "      a: {pattern: '(a+)+$'}\n",
             "limits:\n", "  session: {max_calls: -1}\n", "  max_argument_chars: 99999999999999999999999\n",
             "scopes: {network: {deny_hosts: ['300.1.2.3/8']}}\n", "a: &a [1, 2]\n", "b: [*a, *a, *a]\n", "roles: {r: {tools: ['*']}}\n",
             "[[[[[[[[", "]]]]", "{", "}", "!!python/object:os.system 'x'\n", "name: y\n", "\t", "\x00", "\udcff", "lines: 3\n",
             "lines:\n  - hazard: '*'\n    red: 0.3\n", "errors: {max_share: 7}\n", "regression: {alpha: 1e999}\n"]

texts = st.one_of(st.text(max_size=400), st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
json_like = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                         lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                         max_leaves=30)


def bounded(fn, *args):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn(*args)
    except ConfigError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5 and peak < 64 * 2**20


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_guard_policy_text(text):
    bounded(load_guard_policy, text + "\nname: fuzz\n" if "\n" not in text else text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["name", "tools", "roles", "limits", "scopes", "detectors", "content", "x"]),
                       json_like, max_size=5))
def test_guard_policy_dict(data):
    bounded(load_guard_policy, data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_gate_policy_file(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("pol") / "p.yaml"
    p.write_bytes(text.encode("utf-8", "surrogateescape"))
    bounded(load_gate_policy, p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["lines", "overall", "errors", "regression", "grades", "required_hazards", "x"]),
                       json_like, max_size=5))
def test_gate_policy_dict(data):
    bounded(load_gate_policy, data)
