"""Attack building blocks: attempts with lineage, the Mutator interface and mutator chains.

A *seed* is a dataset Item (a harmful request). A mutator turns an Attempt (the seed's text and
messages so far, plus how they were produced) into one or more new Attempts. Chains compose
mutators left to right (``base64+roleplay`` = encode, then wrap the encoded text in a role-play).
Every attempt carries its lineage (seed id, chain with parameters, final text and messages) so that a
result can be traced back and replayed; its id is derived from the seed id and the chain only.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from airisk.errors import ConfigError
from airisk.spec import Spec, parse, split_top
from airisk.types import Item, Message, stable_hash


class Step(BaseModel):
    """One mutator application: its registered name and the parameters that shaped its output."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class Attempt(BaseModel):
    """A candidate attack prompt derived from a seed.

    ``text`` is the final user turn; ``system`` an optional system prompt (persona mutators set it);
    ``history`` earlier turns for multi-turn framings. ``variant`` distinguishes several outputs of
    the same chain on the same seed.
    """

    seed_id: str
    seed_text: str
    text: str
    system: str | None = None
    history: list[Message] = Field(default_factory=list)
    chain: list[Step] = Field(default_factory=list)
    variant: list[int] = Field(default_factory=list)

    @classmethod
    def from_seed(cls, seed: Item) -> "Attempt":
        return cls(seed_id=seed.id, seed_text=seed.prompt, text=seed.prompt)

    def derive(self, step: Step, *, text: str | None = None, system: str | None = None,
               history: list[Message] | None = None, variant: int = 0) -> "Attempt":
        """A new attempt one step further down the chain (self is left untouched)."""
        return self.model_copy(update={
            "text": self.text if text is None else text,
            "system": self.system if system is None else system,
            "history": self.history if history is None else history,
            "chain": [*self.chain, step],
            "variant": [*self.variant, variant],
        })

    def messages(self) -> list[Message]:
        out = [Message(role="system", content=self.system)] if self.system else []
        return [*out, *self.history, Message(role="user", content=self.text)]

    def lineage(self, attack: str) -> dict[str, Any]:
        return {
            "seed_id": self.seed_id,
            "attack": attack,
            "chain": [s.model_dump() for s in self.chain],
            "variant": list(self.variant),
            "text": self.text,
            "messages": [m.model_dump(exclude_none=True) for m in self.messages()],
        }


def attempt_id(seed_id: str, attack: str, chain: list[Step] | list[dict[str, Any]], index: int | str = 0) -> str:
    """Deterministic item id for an attempt: same seed + same chain (with params) + index = same id."""
    steps = [s.model_dump() if isinstance(s, Step) else s for s in chain]
    return f"{seed_id}~{attack}~{stable_hash(steps, 8)}~{index}"


class AttackContext:
    """What mutators and attacks may use beyond the attempt itself: an attacker model, a store cache.

    Deterministic mutators ignore it; model-driven ones raise AttackError when ``attacker`` is None.
    """

    def __init__(self, attacker: Any = None, store: Any = None):
        self.attacker = attacker
        self.store = store


class AttackError(Exception):
    """An attack could not be applied to one seed (attacker endpoint error, mutation not applicable).

    It is recorded on that attempt, with ``kind``, and never stops the run.
    """

    def __init__(self, message: str, *, kind: str = "attack_error"):
        super().__init__(message)
        self.kind = kind


class Mutator(ABC):
    """Turns one attempt into one or more attempts.

    Deterministic mutators override ``transform(text) -> str`` (or ``variants`` for several outputs);
    model-driven ones override ``amutate``. ``params`` must contain everything that changes the
    output (template hashes included), since they become part of lineage and attempt ids.
    """

    name: ClassVar[str] = "mutator"
    description: ClassVar[str] = ""
    needs_attacker: ClassVar[bool] = False
    #: Parameter names this mutator understands; None accepts any (third-party default).
    param_names: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, **params: Any):
        check_params(self.name, params, self.param_names)
        self.params: dict[str, Any] = params

    def step(self, **extra: Any) -> Step:
        return Step(name=self.name, params={**self.params, **extra})

    # -- deterministic path ----------------------------------------------------------------
    def transform(self, text: str) -> str:
        raise NotImplementedError

    def mutate(self, attempt: Attempt) -> list[Attempt]:
        """Deterministic mutation (no model). Default: one output from ``transform``."""
        return [attempt.derive(self.step(), text=self.transform(attempt.text))]

    # -- general path ----------------------------------------------------------------------
    async def amutate(self, attempt: Attempt, ctx: AttackContext) -> list[Attempt]:
        return self.mutate(attempt)

    def apply(self, item: Item) -> list[Attempt]:
        """Convenience: mutate a seed item directly (deterministic mutators only)."""
        if self.needs_attacker:
            raise AttackError(f"mutator '{self.name}' needs an attacker model; use amutate()", kind="needs_attacker")
        return self.mutate(Attempt.from_seed(item))


class Chain:
    """Mutators applied left to right; the outputs are the product of each step's variants."""

    def __init__(self, mutators: list[Mutator]):
        if not mutators:
            raise ConfigError("an attack chain needs at least one mutator")
        self.mutators = mutators

    @property
    def name(self) -> str:
        return "+".join(m.name for m in self.mutators)

    @property
    def needs_attacker(self) -> bool:
        return any(m.needs_attacker for m in self.mutators)

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": m.name, "params": m.params} for m in self.mutators]

    async def amutate(self, attempt: Attempt, ctx: AttackContext) -> list[Attempt]:
        current = [attempt]
        for m in self.mutators:
            nxt: list[Attempt] = []
            for a in current:
                nxt.extend(await m.amutate(a, ctx))
            current = nxt
        return current

    def apply(self, item: Item) -> list[Attempt]:
        current = [Attempt.from_seed(item)]
        for m in self.mutators:
            if m.needs_attacker:
                raise AttackError(f"mutator '{m.name}' needs an attacker model", kind="needs_attacker")
            current = [b for a in current for b in m.mutate(a)]
        return current

    def __add__(self, other: "Chain | Mutator") -> "Chain":
        return Chain([*self.mutators, *(other.mutators if isinstance(other, Chain) else [other])])


def check_params(name: str, params: dict[str, Any], allowed: tuple[str, ...] | None) -> None:
    """Reject parameters a mutator/attack does not understand (they would change ids and do nothing)."""
    if allowed is None:
        return
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"'{name}' has no parameter {', '.join(map(repr, unknown))}; "
                          f"it accepts: {', '.join(allowed) or '(none)'}")


# ---- spec parsing ------------------------------------------------------------------------


def split_specs(spec: str) -> list[str]:
    """Split ``"base64,translate[lang=fr,style=formal],crescendo"`` on commas outside brackets."""
    return split_top(spec)


def parse_term(term: str) -> tuple[str, dict[str, Any]]:
    """``"translate[lang=fr]"`` -> ("translate", {"lang": "fr"}) (grammar: :mod:`airisk.spec`)."""
    sp = parse_term_spec(term)
    return sp.name, sp.params


def parse_term_spec(term: str) -> Spec:
    """One attack or mutator term as a :class:`~airisk.spec.Spec` (only the ``name[...]`` form)."""
    if ":" in term.split("[", 1)[0]:
        raise ConfigError(f"bad attack term '{term}': expected name or name[key=value,...]")
    return parse(term, what="attack")
