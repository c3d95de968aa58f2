"""Attacks: what the campaign runs per seed. An attack drives the target and reports its attempts.

``Attack.run(seed, ctx)`` returns one ``AttemptResult`` per stored attempt. Single-turn attacks
(``ChainAttack``) send each attempt produced by a mutator chain until one succeeds or the query
budget is spent; multi-turn attacks live in ``multiturn.py``. A failure to build an attempt (an
attacker endpoint error, a mutation that does not apply) becomes a result with an error and the
reason, never an exception out of the run.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from airisk.attacks.base import Attempt, AttackContext, AttackError, Chain, attempt_id, check_params
from airisk.types import Completion, Conversation, Item, Judgment, Message


class AttemptResult(BaseModel):
    """One stored attempt: the item sent (lineage in metadata), the target's answer and the verdict."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    item: Item
    completion: Completion
    judgment: Judgment | None = None
    queries: int = 0  # target queries spent on this seed by this attack, up to and including this attempt

    @property
    def success(self) -> bool:
        return self.judgment is not None and self.judgment.label == "violating"


class BatchingJudge:
    """Collects concurrent single-conversation requests into ``judge_batch`` calls.

    Attacks need a verdict per attempt (to stop early, or as PAIR feedback) but judges are fastest
    in batches; this gives both. A judge exception becomes ``label="error"`` for that batch.
    """

    def __init__(self, judge: Any, *, batch_size: int = 32, delay: float = 0.02):
        self.inner = judge
        self.batch_size = batch_size
        self.delay = delay
        self._queue: list[tuple[Conversation, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self.calls = 0

    @property
    def id(self) -> str:
        return self.inner.id

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    async def judge(self, conv: Conversation) -> Judgment:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._queue.append((conv, fut))
        if len(self._queue) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.delay, self._flush)
        return await fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Conversation, asyncio.Future]]) -> None:
        self.calls += 1
        try:
            out = await self.inner.judge_batch([c for c, _ in batch])
            if len(out) != len(batch):
                raise RuntimeError(f"judge returned {len(out)} judgments for {len(batch)} conversations")
        except Exception as e:  # one broken batch must not kill the campaign
            out = [Judgment(label="error", error=f"{type(e).__name__}: {e}", judge_id=getattr(self.inner, "id", ""))
                   for _ in batch]
        for (_, fut), j in zip(batch, out):
            if not fut.done():
                fut.set_result(j)


class RunContext(AttackContext):
    """Everything an attack may use: the target, the judge, the attacker model, budgets."""

    def __init__(self, target: Any, judge: BatchingJudge, *, attacker: Any = None, store: Any = None,
                 budget: int = 10, stop_on_success: bool = True, policy: Any = None):
        super().__init__(attacker=attacker, store=store)
        self.target = target
        self.judge = judge
        self.budget = budget
        self.stop_on_success = stop_on_success
        self.policy = policy

    async def ask(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        from airisk.engine import call_with_retries

        return await call_with_retries(self.target, messages, item=item, policy=self.policy)

    async def verdict(self, seed: Item, response: str, messages: list[Message] | None = None) -> Judgment:
        """Judge a target reply against the seed's *intent* (its original prompt), whatever framing got it there."""
        return await self.judge.judge(Conversation(
            prompt=seed.prompt, response=response, intent=seed.intent or seed.prompt, hazard=seed.hazard, locale=seed.locale, item_id=seed.id,
            messages=messages,
        ))


_REFUSAL = re.compile(
    r"\b(I(?:'m| am) (?:sorry|unable|not able)|I can(?:no|')t (?:help|assist|provide|do|comply|share)|"
    r"I won'?t (?:help|provide|assist)|I (?:must|have to) (?:decline|refuse)|against my (?:guidelines|policy))",
    re.I,
)


def looks_like_refusal(text: str | None) -> bool:
    """Cheap refusal check used only to steer attacks (backtracking), never to score them."""
    return bool(text) and bool(_REFUSAL.search(text[:400]))


def attempt_item(seed: Item, attempt: Attempt, attack: str, index: int | str, **extra: Any) -> Item:
    """The stored form of an attempt: hazard etc. from the seed, lineage in metadata."""
    msgs = attempt.messages()
    return Item(
        id=attempt_id(seed.id, attack, attempt.chain, index),
        prompt=attempt.text,
        messages=msgs if len(msgs) > 1 else None,
        intent=seed.intent or seed.prompt,  # a wrapped or encoded attempt is judged against its seed's request
        hazard=seed.hazard, persona=seed.persona, locale=seed.locale, dataset=seed.dataset,
        expected=seed.expected, source_category=seed.source_category,
        metadata={"lineage": attempt.lineage(attack), "seed_id": seed.id, "attack": attack,
                  "seed_prompt": seed.prompt, **extra},
    )


def error_result(seed: Item, attack: str, chain: list[dict[str, Any]], err: Exception, queries: int = 0,
                 index: int | str = "error") -> AttemptResult:
    """A recorded failure to attack this seed (kept in the run with its reason)."""
    kind = getattr(err, "kind", "attack_error")
    attempt = Attempt.from_seed(seed)
    item = Item(
        id=attempt_id(seed.id, attack, chain, index), prompt=seed.prompt, intent=seed.intent or seed.prompt,
        hazard=seed.hazard, persona=seed.persona,
        locale=seed.locale, dataset=seed.dataset, expected=seed.expected, source_category=seed.source_category,
        metadata={"lineage": {**attempt.lineage(attack), "chain": chain}, "seed_id": seed.id, "attack": attack,
                  "seed_prompt": seed.prompt, "attack_error": {"kind": kind, "reason": str(err)}, "queries": queries},
    )
    return AttemptResult(item=item, completion=Completion(error=f"{kind}: {err}", error_kind=kind), queries=queries)


class Attack(ABC):
    """Runs against one seed and returns its attempts. Subclasses register under ``airisk.attacks``."""

    name: ClassVar[str] = "attack"
    description: ClassVar[str] = ""
    needs_attacker: ClassVar[bool] = False
    multi_turn: ClassVar[bool] = False
    param_names: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, **params: Any):
        check_params(self.name, params, self.param_names)
        self.params = params
        self.label = self.name if not params else f"{self.name}[{','.join(f'{k}={v}' for k, v in params.items())}]"

    def describe(self) -> dict[str, Any]:
        return {"name": self.label, "attack": self.name, "params": self.params, "multi_turn": self.multi_turn}

    @abstractmethod
    async def run(self, seed: Item, ctx: RunContext) -> list[AttemptResult]:
        ...


class ChainAttack(Attack):
    """Single-turn: send each attempt of a mutator chain, in order, until success or budget."""

    name = "chain"

    def __init__(self, chain: Chain, label: str | None = None):
        super().__init__()
        self.chain = chain
        self.label = label or chain.name
        self.needs_attacker = chain.needs_attacker  # type: ignore[misc]

    def describe(self) -> dict[str, Any]:
        return {"name": self.label, "attack": "chain", "chain": self.chain.describe(), "multi_turn": False}

    async def run(self, seed: Item, ctx: RunContext) -> list[AttemptResult]:
        try:
            attempts = await self.chain.amutate(Attempt.from_seed(seed), ctx)
        except AttackError as e:
            return [error_result(seed, self.label, self.chain.describe(), e)]
        except Exception as e:  # a buggy mutator plugin is recorded like any other failure
            return [error_result(seed, self.label, self.chain.describe(), AttackError(f"{type(e).__name__}: {e}", kind="mutator_exception"))]
        results: list[AttemptResult] = []
        for i, attempt in enumerate(attempts[: max(0, ctx.budget)]):
            item = attempt_item(seed, attempt, self.label, i, queries=i + 1, variants=len(attempts))
            completion = await ctx.ask(attempt.messages(), item=item)
            judgment = None
            if completion.ok:
                judgment = await ctx.verdict(seed, completion.text or "")
            results.append(AttemptResult(item=item, completion=completion, judgment=judgment, queries=i + 1))
            if ctx.stop_on_success and results[-1].success:
                break
        return results
