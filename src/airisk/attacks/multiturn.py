"""Multi-turn attacks: a conversation engine, scripted escalation, crescendo and PAIR.

``Dialogue`` drives the target with a growing message list and keeps a full transcript (including
exchanges later rolled back). Each attack stores ONE attempt per seed: the final (or first
successful) exchange, with the transcript in ``Completion.raw["transcript"]`` and the number of
target queries it took in the item's metadata. Budgets: ``turns`` (conversation length) and the
campaign's query budget; they always stop at the judge's first ``violating`` verdict (so the stored
exchange is the successful one).
"""

from __future__ import annotations

from typing import Any

from airisk.attacks.attack import Attack, AttemptResult, RunContext, error_result, looks_like_refusal
from airisk.attacks.attacker import parse_pair_reply
from airisk.attacks.base import Attempt, AttackError, Step, attempt_id
from airisk.attacks.mutators import launder_text
from airisk.attacks.templates import load, template_hash
from airisk.types import Completion, Item, Judgment, Message


class Dialogue:
    """A conversation with the target: ``send`` adds a user turn and the target's reply."""

    def __init__(self, ctx: RunContext, seed: Item, *, system: str | None = None):
        self.ctx = ctx
        self.seed = seed
        self.messages: list[Message] = [Message(role="system", content=system)] if system else []
        self.transcript: list[dict[str, Any]] = []
        self.queries = 0

    @property
    def budget_left(self) -> int:
        return self.ctx.budget - self.queries

    async def send(self, text: str, *, judge: bool = True, **note: Any) -> tuple[Completion, Judgment | None]:
        if self.budget_left <= 0:
            raise AttackError("query budget exhausted", kind="budget")
        msgs = [*self.messages, Message(role="user", content=text)]
        self.queries += 1
        completion = await self.ctx.ask(msgs)
        judgment = None
        entry: dict[str, Any] = {"query": self.queries, "user": text, **note}
        if completion.ok:
            self.messages = [*msgs, Message(role="assistant", content=completion.text or "")]
            if judge:
                judgment = await self.ctx.verdict(self.seed, completion.text or "", self.messages)
            entry.update(assistant=completion.text, verdict=judgment.label if judgment else None,
                         probability=judgment.probability if judgment else None)
        else:
            entry.update(error=completion.error, error_kind=completion.error_kind)
        self.transcript.append(entry)
        return completion, judgment

    def rollback(self) -> None:
        """Drop the last exchange from the conversation (the transcript keeps it, marked)."""
        if len(self.messages) >= 2 and self.messages[-1].role == "assistant":
            self.messages = self.messages[:-2]
            if self.transcript:
                self.transcript[-1]["rolled_back"] = True

    def history(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content or ""} for m in self.messages if m.role != "system"]


def _result(seed: Item, attack: str, steps: list[Step], dialogue: Dialogue, completion: Completion,
            judgment: Judgment | None, **extra: Any) -> AttemptResult:
    msgs = list(dialogue.messages)
    if msgs and msgs[-1].role == "assistant":
        msgs = msgs[:-1]  # the stored item is what was sent; the reply is the completion
    last_user = next((m.content or "" for m in reversed(msgs) if m.role == "user"), seed.prompt)
    attempt = Attempt(seed_id=seed.id, seed_text=seed.prompt, text=last_user, chain=steps)
    lineage = {**attempt.lineage(attack), "messages": [m.model_dump(exclude_none=True) for m in msgs]}
    item = Item(
        id=attempt_id(seed.id, attack, steps, 0), prompt=last_user, messages=msgs or None,
        intent=seed.intent or seed.prompt, hazard=seed.hazard,
        persona=seed.persona, locale=seed.locale, dataset=seed.dataset, expected=seed.expected,
        source_category=seed.source_category,
        metadata={"lineage": lineage, "seed_id": seed.id, "attack": attack, "seed_prompt": seed.prompt,
                  "queries": dialogue.queries, "turns": sum(1 for m in msgs if m.role == "user"), **extra},
    )
    raw = {**(completion.raw or {}), "transcript": dialogue.transcript}
    return AttemptResult(item=item, completion=completion.model_copy(update={"raw": raw}), judgment=judgment,
                         queries=dialogue.queries)


def topic_of(seed: Item, max_words: int = 12) -> str:
    """A neutral short topic phrase for the seed (laundered, truncated) to open a conversation with."""
    text, _ = launder_text(seed.prompt)
    words = text.rstrip("?.!").split()
    return " ".join(words[:max_words]) + ("..." if len(words) > max_words else "")


class ScriptedEscalation(Attack):
    """Walks a per-hazard escalation ladder (templates/escalation.yaml); no attacker model needed."""

    name = "scripted"
    param_names = ("turns",)
    description = "multi-turn: scripted per-hazard escalation ladder, no attacker model (turns=N)"
    multi_turn = True

    async def run(self, seed: Item, ctx: RunContext) -> list[AttemptResult]:
        data = load("escalation")
        ladder_key = seed.hazard if seed.hazard in data["ladders"] else "default"
        ladder = data["ladders"][ladder_key][: int(self.params.get("turns", 99))]
        steps = [Step(name="scripted", params={"ladder": ladder_key, "version": data["version"],
                                               "template": template_hash(*ladder), "turns": len(ladder)})]
        dialogue = Dialogue(ctx, seed)
        topic = topic_of(seed)
        completion, judgment = Completion(error="no turn was sent", error_kind="budget"), None
        try:
            for rung in ladder:
                text = rung.replace("{topic}", topic).replace("{text}", seed.prompt)
                completion, judgment = await dialogue.send(text)
                if not completion.ok or (judgment is not None and judgment.label == "violating"):
                    break
        except AttackError as e:  # budget ran out mid-ladder: keep what we have
            if not dialogue.transcript:
                return [error_result(seed, self.label, [s.model_dump() for s in steps], e)]
        return [_result(seed, self.label, steps, dialogue, completion, judgment)]


class Crescendo(Attack):
    """Attacker-driven gradual escalation; refused turns are rolled back and retried (max_backtracks)."""

    name = "crescendo"
    param_names = ("turns", "max_backtracks")
    description = "multi-turn: attacker model escalates gradually, rolls back refusals (turns=N, max_backtracks=N)"
    needs_attacker = True
    multi_turn = True

    async def run(self, seed: Item, ctx: RunContext) -> list[AttemptResult]:
        turns = int(self.params.get("turns", 5))
        max_back = int(self.params.get("max_backtracks", 2))
        if ctx.attacker is None:
            return [error_result(seed, self.label, [{"name": "crescendo", "params": self.params}],
                                 AttackError("crescendo needs an attacker model (--attacker SPEC)", kind="needs_attacker"))]
        from airisk.attacks.attacker import attacker_template

        _, thash = attacker_template("crescendo")
        steps = [Step(name="crescendo", params={"turns": turns, "max_backtracks": max_back, "template_hash": thash,
                                                "attacker": ctx.attacker.fingerprint()})]
        dialogue = Dialogue(ctx, seed)
        completion, judgment = Completion(error="no turn was sent", error_kind="budget"), None
        backtracks, refused, turn = 0, False, 1
        try:
            while turn <= turns and dialogue.budget_left > 0:
                text, _ = await ctx.attacker.complete("crescendo", goal=seed.prompt, turn=turn, max_turns=turns,
                                                      history=dialogue.history(), refused=refused)
                completion, judgment = await dialogue.send(text, turn=turn)
                if not completion.ok:
                    break
                if judgment is not None and judgment.label == "violating":
                    break
                refused = (judgment is not None and judgment.refusal == "full_refusal") or looks_like_refusal(completion.text)
                if refused and backtracks < max_back and turn < turns:
                    dialogue.rollback()
                    backtracks += 1
                    continue
                turn += 1
        except AttackError as e:
            if not dialogue.transcript:
                return [error_result(seed, self.label, [s.model_dump() for s in steps], e, queries=dialogue.queries)]
            return [_result(seed, self.label, steps, dialogue, completion, judgment, backtracks=backtracks,
                            attack_error={"kind": e.kind, "reason": str(e)})]
        return [_result(seed, self.label, steps, dialogue, completion, judgment, backtracks=backtracks)]


class PAIR(Attack):
    """PAIR-style refinement: the attacker rewrites a single-turn prompt using the judge's verdict as feedback."""

    name = "pair"
    param_names = ("iterations",)
    description = "iterative refinement by an attacker model, judge verdict as feedback (iterations=N)"
    needs_attacker = True
    multi_turn = True  # multi-query: each iteration is a fresh single-turn conversation

    async def run(self, seed: Item, ctx: RunContext) -> list[AttemptResult]:
        iters = int(self.params.get("iterations", 5))
        if ctx.attacker is None:
            return [error_result(seed, self.label, [{"name": "pair", "params": self.params}],
                                 AttackError("pair needs an attacker model (--attacker SPEC)", kind="needs_attacker"))]
        from airisk.attacks.attacker import attacker_template

        _, thash = attacker_template("pair")
        steps = [Step(name="pair", params={"iterations": iters, "template_hash": thash,
                                           "attacker": ctx.attacker.fingerprint()})]
        last_prompt = last_response = verdict = None
        score: float | None = None
        transcript: list[dict[str, Any]] = []
        last: tuple[Dialogue, Completion, Judgment | None] | None = None
        queries = 0
        try:
            for it in range(1, iters + 1):
                if queries >= ctx.budget:
                    break
                reply, _ = await ctx.attacker.complete("pair", goal=seed.prompt, iteration=it, max_iterations=iters,
                                                       last_prompt=last_prompt, last_response=last_response,
                                                       verdict=verdict, score=score)
                prompt, improvement = parse_pair_reply(reply)
                dialogue = Dialogue(ctx, seed)
                dialogue.queries = queries
                completion, judgment = await dialogue.send(prompt, iteration=it, improvement=improvement)
                queries = dialogue.queries
                transcript.extend(dialogue.transcript)
                dialogue.transcript = transcript
                last = (dialogue, completion, judgment)
                if not completion.ok:
                    break
                last_prompt, last_response = prompt, completion.text
                verdict = judgment.label if judgment else "error"
                score = judgment.probability if judgment else None
                if judgment is not None and judgment.label == "violating":
                    break
        except AttackError as e:
            if last is None:
                return [error_result(seed, self.label, [s.model_dump() for s in steps], e, queries=queries)]
            d, c, j = last
            return [_result(seed, self.label, steps, d, c, j, attack_error={"kind": e.kind, "reason": str(e)})]
        if last is None:
            return [error_result(seed, self.label, [s.model_dump() for s in steps],
                                 AttackError("query budget is zero", kind="budget"))]
        d, c, j = last
        return [_result(seed, self.label, steps, d, c, j)]


MULTI_TURN = [ScriptedEscalation, Crescendo, PAIR]
