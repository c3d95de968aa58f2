"""The shared base for judges that ask a model behind an OpenAI-compatible endpoint.

``LLMJudge`` owns everything the Llama Guard and rubric judges have in common: the async client
(temperature 0, retries with exponential backoff on 429 / 5xx / timeouts / connection errors,
honouring Retry-After), re-asking when the model's answer cannot be parsed, the cache keyed by
(judge fingerprint, input) in memory and optionally in a ``Store``, and the rule that any failure
ends as ``label="error"``, never as ``non_violating``.

Subclasses provide ``build_messages(conversation)`` and ``parse(text) -> Judgment`` (raising
``ParseError`` for output they cannot read) and ``template_text()`` (hashed into the fingerprint).

The API key is read at call time from the environment variable named by ``api_key_env``; only
that name is kept, and it is not part of the fingerprint.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from abc import abstractmethod
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai

from airisk.errors import ConfigError
from airisk.judges.base import Judge
from airisk.types import Conversation, Judgment, stable_hash

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_SURROGATE = re.compile("[\ud800-\udfff]")


class ParseError(ValueError):
    """The model answered, but not in the format the judge asked for."""


class CallError(Exception):
    """The endpoint could not be reached or kept failing (after retries)."""


def clean_text(s: str | None) -> str:
    """Text safe to send as JSON: lone surrogates (invalid UTF-16 halves) become U+FFFD."""
    if not s:
        return ""
    return _SURROGATE.sub("\ufffd", s)


def clip(s: str, max_chars: int) -> str:
    """Keep the head and tail of very long text (harm can sit at either end), with a marker."""
    if max_chars <= 0 or len(s) <= max_chars:
        return s
    head = max_chars * 2 // 3
    tail = max_chars - head
    return f"{s[:head]}\n[... {len(s) - max_chars} characters omitted ...]\n{s[-tail:]}"


def _as_bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("1", "true", "yes", "on")


class LLMJudge(Judge):
    """Base class: see the module docstring. Parameters (all settable from a spec string):

    ``model`` (required), ``base_url`` (default ``$OPENAI_BASE_URL`` or OpenAI), ``api_key_env``
    (default ``OPENAI_API_KEY``; optional for local servers), ``timeout`` (s per request),
    ``max_retries`` (transport retries, default 4), ``parse_retries`` (re-asks after unparseable
    output, default 2), ``concurrency`` (requests in flight, default 8), ``max_chars`` (long
    prompts/responses are clipped to this many characters each, default 24000), ``max_tokens``,
    ``store`` (a ``Store`` or database URL for a persistent cache; default: memory only),
    ``base_delay`` / ``max_delay`` (backoff seconds).
    """

    parser_version: str = "1"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 4,
        parse_retries: int = 2,
        concurrency: int = 8,
        max_chars: int = 24000,
        max_tokens: int | None = None,
        store: Any = None,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
    ):
        if not model:
            raise ConfigError(f"{self.id} judge: parameter 'model' is required (e.g. {self.id}:model=NAME,base_url=URL)")
        base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError(f"{self.id} judge: 'base_url' must be an http(s) URL, got {base_url!r}")
        self.model = str(model)
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.parse_retries = int(parse_retries)
        self.concurrency = max(1, int(concurrency))
        self.max_chars = int(max_chars)
        self.max_tokens = int(max_tokens) if max_tokens not in (None, "") else None
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        if isinstance(store, str):
            from airisk.store import Store  # noqa: PLC0415  (only when asked for)

            store = Store(store)
        self.store = store
        self._memo: dict[str, dict[str, Any]] = {}
        self._client: openai.AsyncOpenAI | None = None
        self.stats = {"requests": 0, "transport_retries": 0, "parse_retries": 0, "cache_hits": 0, "errors": 0}

    # -- subclass hooks ------------------------------------------------------------------
    @abstractmethod
    def template_text(self) -> str:
        """The prompt template(s) in force; hashed into the fingerprint."""

    @abstractmethod
    def build_messages(self, conv: Conversation) -> list[dict[str, Any]]:
        """Chat messages to send for one conversation."""

    @abstractmethod
    def parse(self, text: str) -> Judgment:
        """The model's answer as a Judgment; raise ParseError when it cannot be read."""

    def fingerprint_extra(self) -> dict[str, Any]:
        return {}

    # -- identity ------------------------------------------------------------------------
    @property
    def template_hash(self) -> str:
        return stable_hash(self.template_text(), n=16)

    @property
    def fingerprint(self) -> str:
        # The endpoint host is included (the same model name on another server may be another
        # quantisation or revision); the port, path, and the key are not.
        return stable_hash({
            "judge": self.id, "version": self.version, "parser": self.parser_version, "model": self.model,
            "host": urlsplit(self.base_url).hostname, "template": self.template_hash, "max_chars": self.max_chars,
            **self.fingerprint_extra(),
        })

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(), "model": self.model, "base_url_host": urlsplit(self.base_url).hostname,
            "template_hash": self.template_hash, "parser_version": self.parser_version, "threshold": None,
            **self.fingerprint_extra(),
        }

    # -- transport -----------------------------------------------------------------------
    def _client_(self) -> openai.AsyncOpenAI:
        if self._client is None:
            key = os.environ.get(self.api_key_env) or "not-needed"  # local servers accept any key
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout,
                http_client=httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(max_connections=self.concurrency * 2)),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        return min(self.max_delay, self.base_delay * 2**attempt) * (0.5 + random.random() / 2)

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        """One chat completion at temperature 0, retried on transient failures. Raises CallError."""
        last = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                self.stats["requests"] += 1
                kw: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
                if self.max_tokens:
                    kw["max_tokens"] = self.max_tokens
                resp = await self._client_().chat.completions.create(**kw)
                if not resp.choices:
                    raise CallError("endpoint returned no choices")
                return clean_text(resp.choices[0].message.content)  # model output is untrusted text
            except openai.APIStatusError as e:
                last = f"HTTP {e.status_code}: {str(e.message)[:200]}"
                if e.status_code != 429 and e.status_code < 500 and e.status_code != 408:
                    raise CallError(last) from e  # auth / bad request: retrying will not help
                try:
                    retry_after = float(e.response.headers.get("retry-after"))
                except (TypeError, ValueError):
                    retry_after = None
            except (openai.APITimeoutError, openai.APIConnectionError) as e:
                last = f"{type(e).__name__}: {e}"
            except (openai.APIResponseValidationError, ValueError) as e:  # malformed JSON body etc.
                last = f"malformed response: {type(e).__name__}"
            if attempt < self.max_retries:
                self.stats["transport_retries"] += 1
                await asyncio.sleep(self._backoff(attempt, retry_after))
        raise CallError(f"gave up after {self.max_retries + 1} attempts: {last}")

    # -- judging -------------------------------------------------------------------------
    def _prepare(self, conv: Conversation) -> Conversation:
        return conv.model_copy(update={
            "prompt": clip(clean_text(conv.prompt), self.max_chars),
            "response": clip(clean_text(conv.response), self.max_chars),
            "system_prompt": clean_text(conv.system_prompt) or None,
            "messages": [m.model_copy(update={"content": clip(clean_text(m.content), self.max_chars)}) for m in conv.messages]
            if conv.messages else None,
        })

    async def _judge_one(self, conv: Conversation, sem: asyncio.Semaphore) -> Judgment:
        async with sem:
            try:
                messages = self.build_messages(self._prepare(conv))
            except Exception as e:  # a template bug must show as an error, not a crash of the batch
                return self._error(f"could not build prompt: {type(e).__name__}: {e}")
            problems: list[str] = []
            for attempt in range(self.parse_retries + 1):
                try:
                    text = await self.complete(messages)
                except CallError as e:
                    return self._error(f"endpoint failed: {e}")
                try:
                    j = self.parse(text)
                except ParseError as e:
                    problems.append(str(e))
                    if attempt < self.parse_retries:
                        self.stats["parse_retries"] += 1
                    continue
                return j.model_copy(update={"judge_id": self.id, "judge_fingerprint": self.fingerprint})
            return self._error(f"unparseable judge output after {self.parse_retries + 1} attempts: {problems[-1]}")

    def _error(self, msg: str) -> Judgment:
        self.stats["errors"] += 1
        return Judgment(label="error", error=msg, reason=msg, judge_id=self.id, judge_fingerprint=self.fingerprint)

    async def judge_batch(self, conversations: list[Conversation]) -> list[Judgment]:
        keys = [c.cache_key() for c in conversations]
        ns = f"judge-{self.fingerprint}"  # no ":" (the store splits keys on the first one)
        found: dict[str, dict[str, Any]] = {k: self._memo[k] for k in keys if k in self._memo}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if self.store is not None and missing:
            stored = self.store.cache_get_many(ns, missing)
            self._memo.update(stored)
            found.update(stored)
        self.stats["cache_hits"] += sum(1 for k in keys if k in found)

        sem = asyncio.Semaphore(self.concurrency)
        todo = {k: c for k, c in zip(keys, conversations) if k not in found}  # de-duplicates identical inputs
        results = await asyncio.gather(*(self._judge_one(c, sem) for c in todo.values()))
        new: dict[str, dict[str, Any]] = {}
        for k, j in zip(todo, results):
            if j.label != "error":  # errors are retried next time, never cached
                new[k] = j.model_dump(mode="json")
            found[k] = j.model_dump(mode="json")
        self._memo.update(new)
        if self.store is not None and new:
            self.store.cache_put_many(ns, new)
        return [Judgment.model_validate(found[k]) for k in keys]


def parse_params(raw: dict[str, Any], allowed: dict[str, type]) -> dict[str, Any]:
    """Coerce spec-string parameters (all strings) to the constructor's types."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        t = allowed.get(k)
        if t is bool:
            out[k] = _as_bool(v)
        elif t in (int, float) and isinstance(v, str):
            try:
                out[k] = t(v)
            except ValueError as e:
                raise ConfigError(f"parameter '{k}' must be a number, got {v!r}") from e
        else:
            out[k] = v
    return out
