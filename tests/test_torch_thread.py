"""The offline judge scores on one thread per process, whoever calls it (airisk._torch_thread).

Real shipped weights; the network's entry point is wrapped only to record which thread ran it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading

import pytest

from airisk import _torch_thread
from airisk.judges.offline import OfflineJudge, Scorer
from airisk.types import Conversation

PAIRS = [("How do I bake bread?", "Mix flour, water, salt and yeast, knead, let it rise, bake at 230 C."),
         ("Write a threatening message to my neighbour.", "I can't help with threatening anyone."),
         ("Explain how vaccines work.", "Vaccines train the immune system to recognise a pathogen. " * 30)]


@pytest.fixture(scope="module")
def judge() -> OfflineJudge:
    return OfflineJudge()


@pytest.fixture
def ran_on(monkeypatch) -> list[int]:
    seen: list[int] = []
    real = Scorer._run

    def recording(self, seqs):
        seen.append(threading.get_ident())
        return real(self, seqs)

    monkeypatch.setattr(Scorer, "_run", recording)
    return seen


def test_every_caller_scores_on_the_same_thread(judge, ran_on):
    convs = [Conversation(prompt=p, response=r) for p, r in PAIRS]
    asyncio.run(judge.judge_batch(convs[:1]))  # one event loop ...
    asyncio.run(judge.judge_batch(convs[1:2]))  # ... and another
    judge.score([PAIRS[2][0]], [PAIRS[2][1]])  # sync, from the main thread
    side = threading.Thread(target=judge.prompt_scores, args=(["How do I pick a lock?"],))
    side.start()
    side.join()
    asyncio.run(asyncio.to_thread(judge.classify_refusal, [PAIRS[1][0]], [PAIRS[1][1]]))  # a pool worker
    assert len(ran_on) == 5
    assert len(set(ran_on)) == 1, "the network ran on more than one thread"
    assert ran_on[0] != threading.get_ident(), "the network ran on the caller's thread"


def test_verdicts_equal_scoring_in_the_calling_thread(judge):
    """The judge (its thread, bf16 linear weights made once) gives the numbers of a plain scorer of the
    same weights run here (autocast casting the fp32 weights on every call)."""
    prompts, responses = [p for p, _ in PAIRS], [r for _, r in PAIRS]
    plain = Scorer(judge.model, precision=judge.scorer.precision)
    here = plain.score_pairs(prompts, responses)[0]
    judged = asyncio.run(judge.judge_batch([Conversation(prompt=p, response=r) for p, r in PAIRS]))
    assert [j.probability for j in judged] == [round(float(p), 6) for p in here]
    texts = ["How do I pick a lock?", "Tell me a joke about cats."]
    assert judge.prompt_scores(texts).tolist() == plain.score_texts(texts)[0].tolist()
    if judge.scorer.precision == "bf16":
        assert judge.model.bf16_net is not None, "the judge did not use its bf16 copy"


def test_nested_calls_run_in_place_and_errors_propagate():
    inner = []
    assert _torch_thread.run(lambda: _torch_thread.run(lambda: inner.append(threading.get_ident()) or 7)) == 7
    assert inner and inner[0] != threading.get_ident()

    def boom():
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        _torch_thread.run(boom)
    assert _torch_thread.run(lambda: 1) == 1  # the thread survives a failed call


def _child(q) -> None:
    q.put(_torch_thread.run(os.getpid))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_thread():
    _torch_thread.run(lambda: None)  # the parent's thread exists before the fork
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0, "the child hung or failed using the parent's torch thread"
    assert q.get(timeout=5) == p.pid


def test_the_v1_encoder_runs_on_the_same_thread(monkeypatch):
    from airisk.judges import encoder

    seen: list[int] = []
    real = encoder._encode

    def recording(*a):
        seen.append(threading.get_ident())
        return real(*a)

    monkeypatch.setattr(encoder, "_encode", recording)
    vecs = encoder.encode(["a text read alone", "another one"])
    assert vecs.shape == (2, encoder.DIM)
    assert seen == [_torch_thread.run(threading.get_ident)]


def test_guard_thread_setting_reaches_a_torch_thread_already_running():
    import torch

    from airisk.guard.content import set_inference_threads

    before = torch.get_num_threads()
    x, w = torch.randn(64, 384), torch.randn(1536, 384)
    _torch_thread.run(torch.nn.functional.linear, x, w)  # the torch thread has started its thread team
    try:
        set_inference_threads(1)
        assert _torch_thread.run(torch.get_num_threads) == 1
        assert torch.get_num_threads() == 1
    finally:
        set_inference_threads(before)
    assert _torch_thread.run(torch.get_num_threads) == before
