"""Content guard: classifies prompts and responses into our hazard categories and decides.

Scores come from a *scorer* with the offline judge's interface (``score(prompts, responses)`` ->
P(violating) per pair, ``hazard_scores(texts)`` -> ``[{hazard: probability}]``); by default
``airisk.judges.offline.OfflineJudge``, loaded on first use. Text is Unicode-normalised first.

- input check: P(harmful request) of the prompt read alone (the judge's prompt-harm head, trained on
  human-labelled prompts) against ``prompt_threshold``, plus per-hazard probabilities against
  per-hazard thresholds (scorers without a prompt head use the hazard rule alone);
- output check: P(violating) of the (prompt, response) pair against ``harm_threshold``, plus
  per-hazard probabilities of the response (which also pick the safe completion's wording).

Uncertain scores (inside ``escalate_band``) can be sent to an LLM judge (any object with
``async judge(Conversation) -> Judgment``); off by default. Any scorer or judge failure yields
``on_error`` (BLOCK by default): the guard fails closed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airisk.errors import ConfigError
from airisk.guard.normalize import candidates, normalize_text
from airisk.guard.safe_completion import safe_completion
from airisk.types import Conversation


class TooMuchText(ValueError):
    """More text than one check may classify (``ContentPolicy.max_windows``)."""


def _windows(text: str, size: int, overlap: int) -> list[str]:
    """Overlapping windows covering ``text`` (one window when it is short)."""
    if len(text) <= size:
        return [text]
    step = max(1, size - overlap)
    return [text[i:i + size] for i in range(0, max(1, len(text) - overlap), step)]


def _note(d: "ContentDecision", label: str, how: str) -> None:
    if label not in d.where:
        d.where.append(label)
    if how != "plain" and how not in d.decoded:
        d.decoded.append(how)


class Scorer(Protocol):
    def score(self, prompts: list[str], responses: list[str]) -> Any: ...
    def hazard_scores(self, texts: list[str]) -> list[dict[str, float]]: ...


class ContentPolicy(BaseModel):
    """The ``content:`` section of a guard policy."""

    model_config = ConfigDict(extra="forbid")

    default_threshold: float = Field(0.5, gt=0, le=1)  # per-hazard probability that blocks
    prompt_threshold: float = Field(0.5, gt=0, le=1)  # P(harmful request) of a prompt that blocks it
    thresholds: dict[str, float] = Field(default_factory=dict)  # hazard code -> threshold
    # P(violating) of a response that blocks it; None = the scorer's own calibrated threshold
    # (OfflineJudge.threshold), or 0.5 for scorers without one
    harm_threshold: float | None = Field(None, gt=0, le=1)
    check_input: bool = True
    check_output: bool = True
    escalate: bool = False  # send uncertain scores to an LLM judge
    # drawn around 0.5 (the hazard and prompt thresholds' default); a response's harm score is judged
    # against its own threshold, so its band is this one mapped onto that threshold (harm_escalate_band)
    escalate_band: tuple[float, float] = (0.3, 0.7)
    on_error: Literal["BLOCK", "REVIEW"] = "BLOCK"
    safe_completions: dict[str, str] = Field(default_factory=dict)  # hazard code (or "default") -> message
    redact_content: bool = False  # audit log stores hashes instead of prompt/response text
    # Pre-processing bounds: long texts are classified in overlapping windows (a classifier that
    # truncates its input would otherwise never see the end); more windows than max_windows in one
    # check is refused (fail closed) rather than silently checked in part.
    window_chars: int = Field(1500, ge=200, le=100_000)
    window_overlap: int = Field(200, ge=0, le=10_000)
    max_windows: int = Field(512, ge=1, le=100_000)
    decode: bool = True  # classify decoded readings (base64, ROT13, leetspeak ...) as well

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not 0 < x <= 1:
                raise ValueError(f"threshold for '{k}' must be in (0, 1], got {x}")
        return v


@dataclass(slots=True)
class ContentDecision:
    verdict: Literal["ALLOW", "BLOCK", "REVIEW"]
    stage: Literal["input", "output"]
    hazards: list[str] = field(default_factory=list)  # hazards over their thresholds, strongest first
    scores: dict[str, float] = field(default_factory=dict)
    harm: float | None = None  # P(violating) of the pair (output stage) or P(harmful request) (input stage)
    rule_ids: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    safe_completion: str | None = None
    escalated: bool = False
    normalized: bool = False  # the text was changed by Unicode normalisation
    hidden_text: bool = False  # Unicode tag characters smuggled text
    latency_ms: float = 0.0
    decoded: list[str] = field(default_factory=list)  # decodings whose reading crossed a threshold
    where: list[str] = field(default_factory=list)  # labels of the texts that crossed a threshold

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "stage": self.stage, "hazards": self.hazards,
                "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "harm": None if self.harm is None else round(self.harm, 4), "rule_ids": self.rule_ids,
                "reasons": self.reasons, "safe_completion": self.safe_completion, "escalated": self.escalated,
                "normalized": self.normalized, "hidden_text": self.hidden_text, "latency_ms": round(self.latency_ms, 3),
                "decoded": self.decoded, "where": self.where}


def set_inference_threads(n: int | None) -> None:
    """Intra-op threads for torch inference in this process (``None``: leave torch's default).

    A guard scores one short message at a time; on a small, busy machine one thread is several
    times faster than torch's default (measured here: MiniLM p50 9.9 ms with 1 thread vs 111 ms
    with 2 threads under load), because threads contend for the same cores.
    """
    if n:
        import torch

        from airisk import _torch_thread

        torch.set_num_threads(int(n))
        # the models run on the torch thread, which keeps the count it started with: set it there too
        _torch_thread.run(torch.set_num_threads, int(n))


class ContentGuard:
    def __init__(self, scorer: Scorer | None = None, policy: ContentPolicy | dict | None = None,
                 escalation_judge: Any = None):
        try:
            self.policy = policy if isinstance(policy, ContentPolicy) else ContentPolicy.model_validate(policy or {})
        except Exception as e:
            raise ConfigError(f"content policy: {e}") from None
        self._scorer = scorer
        self.judge = escalation_judge

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            from airisk.judges.offline import OfflineJudge  # heavy: loads the encoder

            self._scorer = OfflineJudge()
        return self._scorer

    @property
    def harm_threshold(self) -> float:
        if self.policy.harm_threshold is not None:
            return self.policy.harm_threshold
        t = getattr(self.scorer, "threshold", None)
        return float(t) if isinstance(t, (int, float)) and 0 < t < 1 else 0.5

    def _threshold(self, hazard: str) -> float:
        return self.policy.thresholds.get(hazard, self.policy.default_threshold)

    def _over(self, scores: dict[str, float]) -> list[str]:
        hits = [(p, h) for h, p in scores.items() if p >= self._threshold(h)]
        return [h for _, h in sorted(hits, reverse=True)]

    def _uncertain(self, values: list[float]) -> bool:
        lo, hi = self.policy.escalate_band
        return any(lo <= v < hi for v in values)

    @property
    def harm_escalate_band(self) -> tuple[float, float]:
        """``escalate_band`` moved onto the response harm threshold, piecewise-linearly (0 -> 0, 0.5 ->
        the threshold, 1 -> 1): with the offline judge's 0.17, (0.3, 0.7) becomes (0.10, 0.50). Without
        it a band around 0.5 would leave every score between the threshold and 0.3 blocked unasked."""
        t = self.harm_threshold

        def move(x: float) -> float:
            return x / 0.5 * t if x <= 0.5 else t + (x - 0.5) / 0.5 * (1 - t)

        lo, hi = self.policy.escalate_band
        return move(lo), move(hi)

    # -- pre-processing: every text -> its readings -> windows the classifier sees --
    def _readings(self, texts: list[str], labels: list[str]) -> tuple[list[tuple[str, str, str]], bool, bool]:
        """(label, decoding, window) triples to classify, and whether normalisation changed
        anything / found hidden tag text. Raises TooMuchText past ``max_windows``."""
        pol = self.policy
        out: list[tuple[str, str, str]] = []
        changed = hidden = False
        for text, label in zip(texts, labels):
            if pol.decode:
                n, cands = candidates(text)
                readings = [(c.how, c.text) for c in cands]
            else:
                n = normalize_text(text)
                readings = [("plain", n.text)]
            changed |= n.changed
            hidden |= bool(n.hidden)
            for how, t in readings:
                for w in _windows(t, pol.window_chars, pol.window_overlap):
                    out.append((label, how, w))
                    if len(out) > pol.max_windows:
                        raise TooMuchText(f"more than {pol.max_windows} text windows to classify in one check "
                                          f"(window {pol.window_chars} chars); refused unchecked")
        return out, changed, hidden

    def _hazard_max(self, readings: list[tuple[str, str, str]], scores: list[dict[str, float]], d: ContentDecision) -> None:
        """Per hazard, the worst score over every reading; notes every reading over a threshold
        (``where``/``decoded``), so a caller can tell which texts were the problem."""
        best: dict[str, float] = {}
        for (label, how, _), sc in zip(readings, scores):
            for h, p in sc.items():
                p = float(p)
                best[h] = max(best.get(h, p), p)
                if p >= self._threshold(h):
                    _note(d, label, how)
        d.scores = best
        d.hazards = self._over(d.scores)

    # -- synchronous checks (scorer only) --
    def check_input(self, prompt: str) -> ContentDecision:
        return self.check_input_texts([prompt])

    def check_input_texts(self, texts: list[str], labels: list[str] | None = None) -> ContentDecision:
        """One input decision over several texts (every turn and field of a conversation): each
        text, each decoded reading of it and each window is classified; the worst score counts."""
        t0 = time.perf_counter()
        labels = labels or [f"text[{i}]" for i in range(len(texts))]
        d = ContentDecision("ALLOW", "input")
        try:
            readings, d.normalized, d.hidden_text = self._readings(texts, labels)
            windows = [w for _, _, w in readings]
            scores = self.scorer.hazard_scores(windows) if readings else []
            self._hazard_max(readings, scores, d)
            prompt_head = getattr(self.scorer, "prompt_scores", None)
            if prompt_head is not None and windows:
                harms = [float(x) for x in prompt_head(windows)]
                d.harm = max(harms)
                for (label, how, _), x in zip(readings, harms):
                    if x >= self.policy.prompt_threshold:
                        _note(d, label, how)
                if d.harm >= self.policy.prompt_threshold:
                    d.verdict = "BLOCK"
                    d.rule_ids.append("content.input.harm")
                    d.reasons.append(f"prompt reads as a harmful request: P={d.harm:.2f} "
                                     f"(threshold {self.policy.prompt_threshold:.2f})")
            if d.hazards:
                d.verdict = "BLOCK"
                d.rule_ids += [f"content.input.{h}" for h in d.hazards]
                d.reasons += [f"prompt scores {d.scores[h]:.2f} for hazard '{h}' (threshold {self._threshold(h):.2f})"
                              for h in d.hazards]
        except Exception as e:  # fail closed
            self._failed(d, e)
        if d.hidden_text:
            d.rule_ids.append("content.hidden_text")
            d.reasons.append("prompt carries text hidden in Unicode tag characters")
        self._finish(d, t0)
        return d

    def check_output(self, prompt: str, response: str) -> ContentDecision:
        return self.check_output_texts(prompt, [response])

    def check_output_texts(self, prompt: str, responses: list[str], labels: list[str] | None = None) -> ContentDecision:
        """One output decision over every text of a response (each choice's content, reasoning,
        refusal, transcript, tool arguments): P(violating) of (prompt, text) and the text's hazard
        scores, for every decoded reading and window; the worst counts."""
        t0 = time.perf_counter()
        labels = labels or [f"response[{i}]" for i in range(len(responses))]
        d = ContentDecision("ALLOW", "output")
        try:
            np_ = normalize_text(prompt)
            readings, changed, d.hidden_text = self._readings(responses, labels)
            d.normalized = changed or np_.changed
            windows = [w for _, _, w in readings]
            if windows:
                harms = [float(x) for x in self.scorer.score([np_.text] * len(windows), windows)]
                self._hazard_max(readings, self.scorer.hazard_scores(windows), d)
                d.harm = max(harms)
                for (label, how, _), x in zip(readings, harms):
                    if x >= self.harm_threshold:
                        _note(d, label, how)
            if d.harm is not None and d.harm >= self.harm_threshold:
                d.verdict = "BLOCK"
                d.rule_ids.append("content.output.harm")
                d.reasons.append(f"response scores P(violating)={d.harm:.2f} (threshold {self.harm_threshold:.2f})")
            if d.hazards:
                d.verdict = "BLOCK"
                d.rule_ids += [f"content.output.{h}" for h in d.hazards]
                d.reasons += [f"response scores {d.scores[h]:.2f} for hazard '{h}'" for h in d.hazards]
        except Exception as e:
            self._failed(d, e)
        self._finish(d, t0)
        return d

    def _failed(self, d: ContentDecision, e: Exception) -> None:
        d.verdict = self.policy.on_error
        d.rule_ids = ["content.error"]
        d.reasons = [f"fail closed: content scorer raised {type(e).__name__}: {str(e)[:200]}"]

    def _finish(self, d: ContentDecision, t0: float) -> None:
        if d.verdict != "ALLOW":
            ranked = d.hazards or sorted(d.scores, key=d.scores.get, reverse=True)[:1]
            d.safe_completion = safe_completion(ranked, self.policy.safe_completions)
        d.latency_ms = (time.perf_counter() - t0) * 1e3

    # -- async checks with optional LLM escalation --
    async def acheck_input(self, prompt: str) -> ContentDecision:
        return await self.acheck_input_texts([prompt])

    async def acheck_output(self, prompt: str, response: str) -> ContentDecision:
        return await self.acheck_output_texts(prompt, [response])

    async def acheck_input_texts(self, texts: list[str], labels: list[str] | None = None) -> ContentDecision:
        d = await asyncio.to_thread(self.check_input_texts, texts, labels)  # model inference off the event loop
        if self._should_escalate(d, list(d.scores.values())):
            await self._escalate(d, Conversation(prompt="\n\n".join(texts), response=""))
        return d

    async def acheck_output_texts(self, prompt: str, responses: list[str], labels: list[str] | None = None) -> ContentDecision:
        d = await asyncio.to_thread(self.check_output_texts, prompt, responses, labels)
        lo, hi = self.harm_escalate_band
        if self._should_escalate(d, list(d.scores.values()), harm_uncertain=d.harm is not None and lo <= d.harm < hi):
            await self._escalate(d, Conversation(prompt=prompt, response="\n\n".join(responses)))
        return d

    def _should_escalate(self, d: ContentDecision, values: list[float], harm_uncertain: bool = False) -> bool:
        return (self.policy.escalate and self.judge is not None and "content.error" not in d.rule_ids
                and (harm_uncertain or self._uncertain(values)))

    async def _escalate(self, d: ContentDecision, conv: Conversation) -> None:
        t0 = time.perf_counter()
        d.escalated = True
        try:
            j = await self.judge.judge(conv)
            label = getattr(j, "label", "error")
        except Exception as e:
            label, j = "error", None
            d.reasons.append(f"escalation judge raised {type(e).__name__}")
        if label == "violating":
            d.verdict = "BLOCK"
            d.rule_ids.append("content.escalation.violating")
            d.reasons.append(f"escalation judge: violating ({getattr(j, 'reason', '') or 'no reason given'})")
            cats = list(getattr(j, "categories", []) or [])
            d.safe_completion = safe_completion(cats + d.hazards, self.policy.safe_completions)
        elif label == "error":
            d.verdict = self.policy.on_error
            d.rule_ids.append("content.escalation.error")
            d.reasons.append("fail closed: escalation judge could not decide")
            d.safe_completion = safe_completion(d.hazards, self.policy.safe_completions)
        else:  # the judge clears an uncertain case
            hi = self.policy.escalate_band[1]
            harm_hi = self.harm_escalate_band[1] if d.stage == "output" else hi
            if d.verdict == "BLOCK" and not any(s >= hi for s in d.scores.values()) and (d.harm or 0) < harm_hi:
                d.verdict = "ALLOW"
                d.safe_completion = None
            d.rule_ids.append("content.escalation.non_violating")
            d.reasons.append("escalation judge: non-violating")
        d.latency_ms += (time.perf_counter() - t0) * 1e3
