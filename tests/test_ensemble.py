"""Ensemble strategies, error policy, card-based weights and spec-string construction."""

from __future__ import annotations

import pytest

from airisk.errors import ConfigError
from airisk.judges.base import Judge
from airisk.judges.cards import save_card
from airisk.judges.ensemble import EnsembleJudge
from airisk.judges.factory import make_judge, parse_spec
from airisk.judges.metrics import binary_card_fields
from airisk.judges.cards import JudgeCard, LabelSetInfo
from airisk.testing.openai_server import running_server
from airisk.types import Conversation, Judgment


class Fixed(Judge):
    """A member that answers from a fixed script, one label per conversation."""

    id = "fixed"

    def __init__(self, name: str, labels: list[str], cats: list[str] | None = None):
        self.name, self.labels, self.cats = name, labels, cats or []

    @property
    def fingerprint(self) -> str:
        return f"fp-{self.name}"

    async def judge_batch(self, conversations):
        return [Judgment(label=lab, categories=self.cats if lab == "violating" else [], probability=None,
                         error="boom" if lab == "error" else None) for lab in self.labels[: len(conversations)]]


class Crashing(Judge):
    id = "crashing"

    @property
    def fingerprint(self) -> str:
        return "fp-crash"

    async def judge_batch(self, conversations):
        raise RuntimeError("member exploded")


V, N, E = "violating", "non_violating", "error"
CONVS = [Conversation(prompt=f"p{i}", response=f"r{i}") for i in range(6)]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path))
    return tmp_path


async def run(strategy, cols, **kw):
    members = [Fixed(f"m{i}", c) for i, c in enumerate(cols)]
    ens = EnsembleJudge(members, strategy=strategy, **kw)
    return ens, await ens.judge_batch(CONVS[: len(cols[0])])


async def test_majority_with_errors_and_ties():
    # rows: VVN -> V; NNV -> N; V N E -> tie among answers -> V; E E E -> error; N N E -> N; E E V -> V
    cols = [[V, N, V, E, N, E], [V, N, N, E, N, E], [N, V, E, E, E, V]]
    _, out = await run("majority", cols)
    assert [o.label for o in out] == [V, N, V, E, N, V]
    assert "tie" in out[2].reason and "1 of 3 members errored" in out[2].reason
    assert out[3].error == "all ensemble members errored"
    assert out[0].probability == pytest.approx(2 / 3)
    assert [v["label"] for v in out[2].votes] == [V, N, E]
    assert out[2].votes[2]["error"] == "boom" and out[0].votes[0]["fingerprint"] == "fp-m0"


async def test_any_unsafe_policy():
    # V with error -> V; all N -> N; N with error -> error (the missing vote could be unsafe); all E -> error
    cols = [[V, N, N, E], [E, N, E, E]]
    _, out = await run("any_unsafe", cols)
    assert [o.label for o in out] == [V, N, E, E]
    assert "no member said violating" in out[2].error


async def test_categories_union_of_violating_votes():
    ens = EnsembleJudge([Fixed("a", [V], ["vcr"]), Fixed("b", [V], ["hte", "vcr"]), Fixed("c", [N])])
    (out,) = await ens.judge_batch(CONVS[:1])
    assert out.label == V and out.categories == ["vcr", "hte"]


def _card(fp: str, correct: int, n: int = 100) -> JudgeCard:
    truth = [V] * (n // 2) + [N] * (n - n // 2)
    pred = [t if i < correct else (N if t == V else V) for i, t in enumerate(truth)]
    return JudgeCard(judge_id="fixed", judge_fingerprint=fp, label_set=LabelSetInfo(name="t", n=n, sha256="x"),
                     **binary_card_fields(truth, pred))


async def test_weighted_uses_card_accuracy():
    save_card(_card("fp-m0", 90))  # accurate judge
    save_card(_card("fp-m1", 55))
    save_card(_card("fp-m2", 55))
    # m0 says V, the two weak judges say N: 0.9 / (0.9 + 0.55 + 0.55) = 0.45 < 0.5 -> N
    ens, out = await run("weighted", [[V, V], [N, V], [N, N]])
    ws, warn = ens.weights()
    assert ws == pytest.approx([0.9, 0.55, 0.55]) and warn is None
    assert out[0].label == N and out[0].probability == pytest.approx(0.45)
    assert out[1].label == V and out[1].probability == pytest.approx(1.45 / 2.0)
    # a lower threshold flips the first verdict
    _, out2 = await run("weighted", [[V], [N], [N]], threshold=0.4)
    assert out2[0].label == V
    assert [v["weight"] for v in out[0].votes] == pytest.approx([0.9, 0.55, 0.55])


async def test_weighted_falls_back_to_equal_weights_with_warning():
    save_card(_card("fp-m0", 90))
    ens, out = await run("weighted", [[V], [N], [N]])
    assert ens.weights()[0] == [1.0, 1.0, 1.0]
    assert out[0].label == N and "no judge card for fixed" in out[0].reason and "equal weights" in out[0].reason


async def test_weighted_by_kappa_and_manual_weights():
    save_card(_card("fp-m0", 100))
    save_card(_card("fp-m1", 50))  # kappa 0 -> weight 0
    ens, out = await run("weighted", [[V], [N]], weight_by="kappa")
    assert ens.weights()[0] == pytest.approx([1.0, 0.0]) and out[0].label == V
    ens2, out2 = await run("weighted", [[V], [N]], weights="1+3")
    assert ens2.weights()[0] == [1.0, 3.0] and out2[0].label == N


async def test_crashing_member_counts_as_errors():
    ens = EnsembleJudge([Fixed("a", [N, V]), Crashing()], strategy="majority")
    out = await ens.judge_batch(CONVS[:2])
    assert [o.label for o in out] == [N, V]
    assert "member exploded" in out[0].votes[1]["error"]


def test_fingerprint_changes_with_strategy_and_members():
    a = EnsembleJudge([Fixed("a", []), Fixed("b", [])], strategy="majority")
    assert a.fingerprint == EnsembleJudge([Fixed("a", []), Fixed("b", [])], strategy="majority").fingerprint
    assert a.fingerprint != EnsembleJudge([Fixed("a", []), Fixed("b", [])], strategy="any_unsafe").fingerprint
    assert a.fingerprint != EnsembleJudge([Fixed("a", []), Fixed("c", [])], strategy="majority").fingerprint


def test_bad_configuration():
    with pytest.raises(ConfigError, match="strategy"):
        EnsembleJudge([Fixed("a", [])], strategy="vote")
    with pytest.raises(ConfigError, match="members"):
        EnsembleJudge([])
    with pytest.raises(ConfigError, match="weights"):
        EnsembleJudge([Fixed("a", [])], strategy="weighted", weights="1+2")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_judge("ensemble:members=rubric,strategy=majority,rubric.model=x,llamaguard.model=y")


def test_parse_spec():
    assert parse_spec("offline") == ("offline", {})
    assert parse_spec("rubric:model=a/b,base_url=http://h:8000/v1") == ("rubric", {"model": "a/b", "base_url": "http://h:8000/v1"})
    for bad in ["", "ru bric", "rubric:model", "rubric:model=a,model=b", "rubric:=x"]:
        with pytest.raises(ConfigError):
            parse_spec(bad)


async def test_ensemble_from_spec_string_over_http():
    def responder(body):
        sysmsg = body["messages"][0]["content"]
        if "JSON" in sysmsg and body["messages"][0]["role"] == "system":
            return '{"label": "non_violating", "hazards": [], "reason": "fine"}'
        return "unsafe\nS2"

    with running_server(responder=responder) as url:
        ens = make_judge(f"ensemble:members=llamaguard+rubric,strategy=any_unsafe,"
                         f"llamaguard.model=lg,llamaguard.base_url={url},rubric.model=chat,rubric.base_url={url}")
        assert isinstance(ens, EnsembleJudge) and [m.id for m in ens.members] == ["llamaguard", "rubric"]
        (out,) = await ens.judge_batch(CONVS[:1])
        await ens.aclose()
    assert out.label == V and out.categories == ["ncr"]
    assert [v["label"] for v in out.votes] == [V, N]
    assert out.judge_id == "ensemble" and out.judge_fingerprint == ens.fingerprint
