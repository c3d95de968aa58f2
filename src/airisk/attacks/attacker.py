"""The attacker model and the model-driven mutators (paraphrase, translate, launder_llm).

The attacker is any system (usually ``openai:...`` pointing at an OpenAI-compatible endpoint).
Its prompt templates live in ``templates/attacker.yaml``; each rendered request is cached in the
Store under namespace ``attacker``, keyed by the template hash, the attacker's fingerprint and the
rendered messages, so reruns and replays do not pay (or vary) twice. Attacker failures raise
AttackError, which the campaign records on the attempt and moves on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, StrictUndefined

from airisk.attacks.base import Attempt, AttackContext, AttackError, Mutator
from airisk.attacks.templates import load, template_hash
from airisk.types import Message, stable_hash

_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)  # noqa: S701 (prompts, not HTML)


def attacker_template(name: str) -> tuple[dict[str, str], str]:
    """(``{"system":..., "user":...}``, template hash) for ``name`` in attacker.yaml."""
    tpl = load("attacker")[name]
    return tpl, template_hash(tpl["system"], tpl["user"])


class Attacker:
    """Renders attacker templates, calls the attacker system with retries, caches the answers."""

    def __init__(self, system: Any, *, store: Any = None, policy: Any = None):
        self.system = system
        self.store = store
        self.policy = policy
        self.calls = 0  # requests actually sent (cache misses)

    @classmethod
    def from_spec(cls, spec: str, *, store: Any = None) -> "Attacker":
        from airisk.systems.factory import make_system

        return cls(make_system(spec), store=store)

    def fingerprint(self) -> str:
        return self.system.fingerprint()

    def describe(self) -> str:
        return self.system.describe()

    async def complete(self, template: str, *, extra_messages: list[Message] | None = None, **values: Any) -> tuple[str, str]:
        """Render ``template`` with ``values``, ask the attacker, return (text, template hash)."""
        from airisk.engine import RetryPolicy, call_with_retries

        tpl, thash = attacker_template(template)
        messages = [Message(role="system", content=_ENV.from_string(tpl["system"]).render(**values)),
                    *(extra_messages or []),
                    Message(role="user", content=_ENV.from_string(tpl["user"]).render(**values))]
        key = stable_hash({"t": thash, "a": self.fingerprint(), "m": [m.model_dump(exclude_none=True) for m in messages]}, 32)
        if self.store is not None and (hit := self.store.cache_get("attacker", key)) is not None:
            return hit["text"], thash
        self.calls += 1
        c = await call_with_retries(self.system, messages, policy=self.policy or RetryPolicy(max_retries=2, base_delay=0.2))
        if c.error:
            raise AttackError(f"attacker endpoint failed ({c.error_kind}): {c.error}", kind="attacker_error")
        text = (c.text or "").strip()
        if not text:
            raise AttackError("attacker returned an empty answer", kind="attacker_empty")
        if self.store is not None:
            self.store.cache_put("attacker", key, {"text": text, "template": template, "template_hash": thash})
        return text, thash

    async def aclose(self) -> None:
        await self.system.aclose()


def clean_rewrite(text: str) -> str:
    """Strip wrappers attacker models like to add (quotes, 'Rewritten request:' labels)."""
    t = text.strip()
    t = re.sub(r"^(rewritten request|paraphrase|translation|request)\s*:\s*", "", t, flags=re.I)
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'\u201c":
        t = t[1:-1].strip()
    return t


class _ModelRewrite(Mutator):
    needs_attacker = True
    template = ""

    def values(self, attempt: Attempt) -> dict[str, Any]:
        return {"text": attempt.text}

    async def amutate(self, attempt: Attempt, ctx: AttackContext) -> list[Attempt]:
        if ctx.attacker is None:
            raise AttackError(f"mutator '{self.name}' needs an attacker model (--attacker SPEC)", kind="needs_attacker")
        text, thash = await ctx.attacker.complete(self.template, **self.values(attempt))
        text = clean_rewrite(text)
        step = self.step(template=self.template, template_hash=thash, attacker=ctx.attacker.fingerprint())
        return [attempt.derive(step, text=text)]

    def mutate(self, attempt: Attempt) -> list[Attempt]:
        raise AttackError(f"mutator '{self.name}' needs an attacker model", kind="needs_attacker")


class Paraphrase(_ModelRewrite):
    name = "paraphrase"
    param_names = ()
    description = "attacker model rewords the request, same meaning"
    template = "paraphrase"


class Translate(_ModelRewrite):
    name = "translate"
    param_names = ("lang",)
    description = "attacker model translates the request (lang=..., default French)"
    template = "translate"

    def values(self, attempt: Attempt) -> dict[str, Any]:
        return {"text": attempt.text, "lang": self.params.get("lang", "French")}


class LaunderLLM(_ModelRewrite):
    name = "launder_llm"
    param_names = ()
    description = "attacker model rewrites the request in neutral, routine wording (intent laundering)"
    template = "launder_llm"


def parse_pair_reply(text: str) -> tuple[str, str | None]:
    """(prompt, improvement) from a PAIR attacker reply; falls back to the raw text if not JSON."""
    m = re.search(r"\{.*\}", text, flags=re.S)
    if m:
        try:
            obj = json.loads(m.group(0))
            if isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
                return obj["prompt"].strip(), obj.get("improvement")
        except json.JSONDecodeError:
            pass
    return clean_rewrite(text), None


MODEL_DRIVEN = [Paraphrase, Translate, LaunderLLM]
