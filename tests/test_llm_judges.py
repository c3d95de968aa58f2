"""Llama Guard and rubric judges over real HTTP against the local OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter

import pytest

from airisk.judges.factory import make_judge
from airisk.judges.llamaguard import LlamaGuardJudge, parse_llama_guard
from airisk.judges.llm import ParseError, clean_text, clip
from airisk.judges.rubric import RubricJudge, extract_json
from airisk.testing.openai_server import Faults, running_server
from airisk.types import Conversation

CALLS: Counter = Counter()
BODIES: dict[str, dict] = {}
GOOD_JSON = '{"label": "violating", "hazards": ["vcr", "zzz"], "refusal": "full_compliance", "reason": "gives steps"}'


def responder(body: dict):
    text = json.dumps(body["messages"], ensure_ascii=False)
    m = re.search(r"CASE:(\w+?):(\w+)", text)
    if not m:
        return "safe"
    case, tag = m.group(1), m.group(2)
    key = f"{case}:{tag}"
    CALLS[key] += 1
    BODIES[key] = body
    n = CALLS[key]
    table = {
        "safe": "safe",
        "safe_ws": "  Safe \n",
        "unsafe": "unsafe\nS1,S10",
        "unsafe_nocode": "unsafe",
        "unsafe_badcode": "unsafe\nS99",
        "garbage_then_safe": "I think this is fine." if n == 1 else "safe",
        "always_garbage": "the quick brown fox",
        "http500_then_unsafe": {"status": 500, "content": "boom"} if n == 1 else "unsafe\nS9",
        "http400": {"status": 400, "content": "bad request"},
        "empty": "",
        "fence": "Here you go:\n```json\n" + GOOD_JSON + "\n```",
        "malformed_then_good": '{"label": "violating", "haz' if n == 1 else GOOD_JSON,
        "bad_label": '{"label": "maybe", "reason": "unsure"}',
        "rubric_safe": '{"label": "Non-Violating", "hazards": [], "refusal": "full_refusal", "reason": "refuses"}',
        "array": "[1, 2, 3]",
        "huge": "unsafe\nS1 " + "x" * 100_000,
        "huge_json": json.dumps({"label": "violating", "hazards": ["vcr"], "reason": "y" * 100_000}),
        "escaped_surrogate": '{"label": "non_violating", "reason": "odd \\ud800 text"}',
    }
    return table[case]


@pytest.fixture(scope="module")
def url():
    with running_server(responder=responder) as base_url:
        yield base_url


def conv(case: str, prompt: str = "How do I do X?", **kw) -> tuple[Conversation, str]:
    tag = uuid.uuid4().hex[:8]
    return Conversation(prompt=prompt, response=f"Reply CASE:{case}:{tag} " + kw.pop("extra", ""), **kw), f"{case}:{tag}"


def lg(url: str, **kw) -> LlamaGuardJudge:
    return LlamaGuardJudge(model="llama-guard", base_url=url, base_delay=0.01, max_delay=0.05, **kw)


def rb(url: str, **kw) -> RubricJudge:
    return RubricJudge(model="chat-model", base_url=url, base_delay=0.01, max_delay=0.05, **kw)


# -- Llama Guard ---------------------------------------------------------------------------
async def test_llama_guard_safe_and_unsafe_mapped_to_hazards(url):
    j = lg(url)
    (c1, _), (c2, _), (c3, _) = conv("safe"), conv("unsafe"), conv("safe_ws")
    out = await j.judge_batch([c1, c2, c3])
    assert [o.label for o in out] == ["non_violating", "violating", "non_violating"]
    assert out[1].categories == ["vcr", "hte"]  # S1 -> vcr, S10 -> hte
    assert "S1,S10" in out[1].reason
    assert all(o.judge_id == "llamaguard" and o.judge_fingerprint == j.fingerprint for o in out)
    await j.aclose()


async def test_llama_guard_prompt_structure_sent_over_http(url):
    for variant in (3, 4):
        j = lg(url, variant=variant)
        c, key = conv("safe", prompt="What is the capital of France?")
        await j.judge(c)
        sent = BODIES[key]
        assert sent["temperature"] == 0 and sent["model"] == "llama-guard"
        content = sent["messages"][-1]["content"]
        assert "<BEGIN UNSAFE CONTENT CATEGORIES>" in content and "S14: Code Interpreter Abuse." in content
        assert "User: What is the capital of France?" in content and f"Agent: {c.response}" in content
        assert content.index("<END CONVERSATION>") < content.index("'safe' or 'unsafe'")
        await j.aclose()
    assert lg(url, variant=3).fingerprint != lg(url, variant=4).fingerprint


async def test_llama_guard_unsafe_without_codes_and_bad_codes(url):
    j = lg(url, parse_retries=1)
    (c1, _), (c2, k2) = conv("unsafe_nocode"), conv("unsafe_badcode")
    a, b = await j.judge_batch([c1, c2])
    assert a.label == "violating" and a.categories == []
    assert b.label == "error" and "S99" in b.error and CALLS[k2] == 2


async def test_garbage_is_retried_then_parsed(url):
    j = lg(url, parse_retries=2)
    c, key = conv("garbage_then_safe")
    out = await j.judge(c)
    assert out.label == "non_violating" and CALLS[key] == 2 and j.stats["parse_retries"] == 1


@pytest.mark.parametrize("case", ["always_garbage", "empty"])
async def test_always_unparseable_becomes_error_never_safe(url, case):
    j = lg(url, parse_retries=2)
    c, key = conv(case)
    out = await j.judge(c)
    assert out.label == "error" and out.error and "unparseable" in out.error
    assert CALLS[key] == 3  # first try + 2 re-asks
    # errors are not cached: asking again calls the endpoint again
    await j.judge(c)
    assert CALLS[key] == 6


async def test_http_500_is_retried(url):
    j = lg(url)
    c, key = conv("http500_then_unsafe")
    out = await j.judge(c)
    assert out.label == "violating" and out.categories == ["iwp"] and CALLS[key] == 2
    assert j.stats["transport_retries"] == 1


async def test_http_400_is_not_retried_and_is_error(url):
    j = lg(url)
    c, key = conv("http400")
    out = await j.judge(c)
    assert out.label == "error" and "HTTP 400" in out.error and CALLS[key] == 1


async def test_rate_limits_and_500s_from_fault_injection_are_survived():
    with running_server(responder=lambda b: "unsafe\nS2", faults=Faults(p500=0.3, p429=0.3, retry_after=0.01, seed=3)) as u:
        j = LlamaGuardJudge(model="lg", base_url=u, base_delay=0.01, max_delay=0.02, max_retries=12)
        convs = [Conversation(prompt=f"p{i}", response=f"r{i}") for i in range(20)]
        out = await j.judge_batch(convs)
        await j.aclose()
    assert [o.label for o in out] == ["violating"] * 20 and all(o.categories == ["ncr"] for o in out)
    assert j.stats["transport_retries"] > 0


async def test_unreachable_endpoint_is_error():
    j = LlamaGuardJudge(model="lg", base_url="http://127.0.0.1:9/v1", max_retries=1, base_delay=0.01, timeout=2)
    out = await j.judge(Conversation(prompt="a", response="b"))
    assert out.label == "error" and "endpoint failed" in out.error


async def test_huge_surrogate_and_non_english_inputs(url):
    j = lg(url, max_chars=5000)
    big, kbig = conv("safe", extra="x" * 100_000)
    sur, ksur = conv("unsafe", prompt="bad \ud800 half \udfff")
    fr, kfr = conv("safe", prompt="Comment fabriquer une bombe ? 爆弾の作り方")
    empty = Conversation(prompt="", response="")
    out = await j.judge_batch([big, sur, fr, empty])
    assert [o.label for o in out[:3]] == ["non_violating", "violating", "non_violating"]
    assert out[3].label in ("non_violating", "violating", "error")  # defined, no crash (server says 'safe')
    sent = BODIES[kbig]["messages"][-1]["content"]
    assert len(sent) < 8000 and "characters omitted" in sent
    assert "\ufffd" in BODIES[ksur]["messages"][-1]["content"]
    assert "爆弾" in BODIES[kfr]["messages"][-1]["content"]


async def test_cache_avoids_second_call_and_persists_in_store(url, tmp_path):
    from airisk.store import Store

    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    c, key = conv("unsafe")
    j1 = lg(url, store=store)
    a = await j1.judge(c)
    b = await j1.judge(c)
    assert CALLS[key] == 1 and a == b and j1.stats["cache_hits"] == 1
    j2 = lg(url, store=store)  # a fresh judge with the same fingerprint reads the store
    c2 = await j2.judge(c)
    assert CALLS[key] == 1 and c2.label == "violating"
    j3 = lg(url, store=store, variant=4)  # different fingerprint: not served from the cache
    await j3.judge(c)
    assert CALLS[key] == 2


async def test_api_key_read_from_env_and_kept_out_of_fingerprint(monkeypatch):
    monkeypatch.setenv("JUDGE_KEY_T", "sk-secret-123")
    with running_server(responder=lambda b: "safe", api_key="sk-secret-123") as u:
        j = LlamaGuardJudge(model="lg", base_url=u, api_key_env="JUDGE_KEY_T")
        ok = await j.judge(Conversation(prompt="a", response="b"))
        await j.aclose()
        monkeypatch.setenv("JUDGE_KEY_T", "wrong")
        j2 = LlamaGuardJudge(model="lg", base_url=u, api_key_env="JUDGE_KEY_T")
        denied = await j2.judge(Conversation(prompt="a", response="b"))
        await j2.aclose()
    assert ok.label == "non_violating"
    assert denied.label == "error" and "401" in denied.error
    assert j.fingerprint == j2.fingerprint
    assert "sk-secret" not in json.dumps(j.describe()) and "sk-secret" not in denied.model_dump_json()


def test_fingerprint_depends_on_model_host_and_template_not_port():
    a = LlamaGuardJudge(model="m1", base_url="http://h:1/v1")
    assert a.fingerprint == LlamaGuardJudge(model="m1", base_url="http://h:2/v1").fingerprint
    assert a.fingerprint != LlamaGuardJudge(model="m2", base_url="http://h:1/v1").fingerprint
    assert a.fingerprint != LlamaGuardJudge(model="m1", base_url="http://other:1/v1").fingerprint
    assert a.fingerprint != LlamaGuardJudge(model="m1", base_url="http://h:1/v1", exclude="S14").fingerprint
    d = a.describe()
    assert d["model"] == "m1" and len(d["template_hash"]) == 16


@pytest.mark.parametrize(
    "text,expected",
    [("safe", (False, [])), ("SAFE\n", (False, [])), ("unsafe\nS1", (True, ["S1"])),
     ("unsafe\n s2 , S14,S2", (True, ["S2", "S14"])), ("\n unsafe \n", (True, []))],
)
def test_parse_llama_guard_accepts(text, expected):
    assert parse_llama_guard(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "maybe", "safe\nbut also S1", "unsafe\nS15", "unsafe\nviolence",
                                  "unsafe\nS1\nextra", "safe-ish"])
def test_parse_llama_guard_rejects(text):
    with pytest.raises(ParseError):
        parse_llama_guard(text)


# -- rubric --------------------------------------------------------------------------------
async def test_rubric_json_in_code_fence(url):
    j = rb(url)
    c, key = conv("fence")
    out = await j.judge(c)
    assert out.label == "violating" and out.categories == ["vcr"] and out.refusal == "full_compliance"
    assert "zzz" in out.reason  # unknown hazard codes are reported, not kept
    sent = BODIES[key]
    assert sent["temperature"] == 0 and sent["messages"][0]["role"] == "system" and '"label"' in sent["messages"][0]["content"]


async def test_rubric_malformed_then_good_json_is_retried(url):
    j = rb(url)
    c, key = conv("malformed_then_good")
    out = await j.judge(c)
    assert out.label == "violating" and CALLS[key] == 2


@pytest.mark.parametrize("case", ["bad_label", "always_garbage", "empty", "array"])
async def test_rubric_invalid_output_becomes_error(url, case):
    j = rb(url, parse_retries=1)
    c, key = conv(case)
    out = await j.judge(c)
    assert out.label == "error" and CALLS[key] == 2


async def test_rubric_label_normalised_and_safe(url):
    out = await rb(url).judge(conv("rubric_safe")[0])
    assert out.label == "non_violating" and out.categories == [] and out.refusal == "full_refusal"


def test_extract_json_variants():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure! {"a": {"b": 2}} hope that helps') == {"a": {"b": 2}}
    assert extract_json("```\n{\"a\": 3}\n```") == {"a": 3}
    with pytest.raises(ParseError):
        extract_json("no json here {oops")


def test_make_judge_builds_llm_judges_from_specs():
    j = make_judge("llamaguard:model=meta-llama/Llama-Guard-3-8B,base_url=http://localhost:8000/v1,variant=4,parse_retries=5")
    assert isinstance(j, LlamaGuardJudge) and j.variant == 4 and j.parse_retries == 5
    r = make_judge("rubric:model=gpt-x,api_key_env=MY_KEY")
    assert isinstance(r, RubricJudge) and r.api_key_env == "MY_KEY"


def test_config_errors():
    from airisk.errors import ConfigError

    with pytest.raises(ConfigError, match="model"):
        make_judge("rubric")
    with pytest.raises(ConfigError, match="variant"):
        make_judge("llamaguard:model=x,variant=2")
    with pytest.raises(ConfigError, match="base_url"):
        make_judge("rubric:model=x,base_url=ftp://nope")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_judge("llamaguard:model=x,colour=blue")


def test_text_helpers():
    assert clean_text("a\ud800b") == "a\ufffdb" and clean_text(None) == ""
    s = "h" * 100 + "t" * 100
    c = clip(s, 60)
    assert c.startswith("h" * 40) and c.endswith("t" * 20) and "140 characters omitted" in c
    assert clip("short", 60) == "short"


async def test_llama_guard_messages_mode_and_multi_turn(url):
    from airisk.types import Message

    j = lg(url, mode="messages")
    c, key = conv("unsafe")
    c = c.model_copy(update={"messages": [Message(role="system", content="sys"), Message(role="user", content="hi"),
                                          Message(role="assistant", content="hello"), Message(role="user", content="now?")]})
    out = await j.judge(c)
    sent = BODIES[key]["messages"]
    assert out.label == "violating"
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant"] and sent[-1]["content"] == c.response
    assert lg(url).render(c).count("User: ") == 2  # prompt mode renders every turn


async def test_rubric_renders_system_prompt_and_hazard(url):
    c, key = conv("rubric_safe", system_prompt="You are a bank assistant.", hazard="spc_fin")
    await rb(url).judge(c)
    user = BODIES[key]["messages"][1]["content"]
    assert "You are a bank assistant." in user and "spc_fin" in user and c.response in user


async def test_huge_or_odd_endpoint_output_is_defined(url):
    a = await lg(url, parse_retries=0).judge(conv("huge")[0])
    assert a.label == "error" and len(a.error) < 400
    b = await rb(url).judge(conv("huge_json")[0])
    assert b.label == "violating" and len(b.reason) <= 500
    c = await rb(url).judge(conv("escaped_surrogate")[0])  # JSON escape decoding to a lone surrogate
    assert c.label == "non_violating" and "\ufffd" in c.reason
    c.model_dump_json()  # serialisable for the store
