"""The ``openai`` system: any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp
server, OpenAI, Azure-style gateways...).

The API key is read from a named environment variable at call time and never stored: only the
variable's *name* is part of the system's parameters, fingerprint and run config.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
from openai.types.chat import ChatCompletion

from airisk.errors import ConfigError, PreflightError
from airisk.systems.base import PermanentError, System, TransientError
from airisk.types import Completion, Item, Message

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def _number(name: str, value: Any, kind: type, low: float, high: float) -> Any:
    """A numeric parameter as ``kind`` within [low, high], or a ConfigError naming it."""
    try:
        if isinstance(value, bool):
            raise ValueError
        out = kind(value)
        if kind is int and out != float(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"openai system: parameter '{name}' must be a{'n integer' if kind is int else ' number'}, "
                          f"got {value!r}") from None
    if not low <= out <= high:  # also refuses NaN
        raise ConfigError(f"openai system: parameter '{name}' must be between {low} and {high}, got {value!r}")
    return out


class OpenAISystem(System):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Parameters: ``model`` (required), ``base_url``, ``api_key_env`` (name of the environment
    variable holding the key; default ``OPENAI_API_KEY``; keys are optional for local servers),
    ``temperature`` (default 0), ``max_tokens``, ``system_prompt``, ``timeout`` (seconds per
    request), ``tools`` (OpenAI tool definitions, for tool-using agents), ``extra`` (dict merged
    into the request body, e.g. ``{"top_p": 0.9}``).
    """

    name = "openai"

    def __init__(
        self, model: str | None = None, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0, max_tokens: int | None = 512, system_prompt: str | None = None,
        timeout: float = 60.0, tools: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None,
        max_connections: int = 256, client_shards: int = 8,
    ):
        if not model:
            raise ConfigError("openai system: parameter 'model' is required (e.g. openai:model=gpt-4o-mini)")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError(f"openai system: 'base_url' must be an http(s) URL, got {base_url!r}")
        super().__init__(
            model=model, base_url=base_url.rstrip("/"), api_key_env=api_key_env,
            temperature=_number("temperature", temperature, float, 0, 2),
            max_tokens=_number("max_tokens", max_tokens, int, 1, 10**7) if max_tokens is not None else None,
            system_prompt=system_prompt, timeout=_number("timeout", timeout, float, 0.001, 86_400), tools=tools,
            extra=extra or {},
        )
        self._max_connections = _number("max_connections", max_connections, int, 1, 100_000)
        # httpcore's pool does O(connections^2) work per request when many connections are idle;
        # several small pools (used round-robin) keep that cost flat at high concurrency.
        self._n_shards = max(1, _number("client_shards", client_shards, int, 1, 1024))
        self._clients: list[openai.AsyncOpenAI] = []
        self._next = 0

    def _api_key(self) -> str:
        key = os.environ.get(self.params["api_key_env"])
        # Local servers (vLLM, Ollama) accept any key; the SDK insists on a non-empty one.
        return key or "not-needed"

    @property
    def client(self) -> openai.AsyncOpenAI:
        if not self._clients:
            per_shard = max(1, self._max_connections // self._n_shards)
            limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
            self._clients = [
                openai.AsyncOpenAI(
                    api_key=self._api_key(), base_url=self.params["base_url"], timeout=self.params["timeout"],
                    max_retries=0,  # the engine owns retries (with Retry-After, jitter and accounting)
                    http_client=httpx.AsyncClient(limits=limits, timeout=self.params["timeout"]),
                )
                for _ in range(self._n_shards)
            ]
        self._next = (self._next + 1) % self._n_shards
        return self._clients[self._next]

    def public_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.params.items() if v not in (None, {}, [])}

    def _body(self, messages: list[Message]) -> dict[str, Any]:
        msgs = [m.model_dump(exclude_none=True) for m in messages]
        sp = self.params.get("system_prompt")
        if sp and not any(m["role"] == "system" for m in msgs):
            msgs.insert(0, {"role": "system", "content": sp})
        body: dict[str, Any] = {"model": self.params["model"], "messages": msgs, "temperature": self.params["temperature"]}
        if self.params.get("max_tokens") is not None:
            body["max_tokens"] = self.params["max_tokens"]
        if self.params.get("tools"):
            body["tools"] = self.params["tools"]
        body.update(self.params.get("extra") or {})
        return body

    async def preflight(self) -> None:
        """Fail before the run, with one clear message, if the endpoint, key or model is wrong.

        ``GET /models`` answers without running the model, so it is tried first; when the route
        is missing or does not list our model (some gateways list aliases only), one minimal
        chat completion decides.
        """
        try:
            models = await self.client.models.list()
            if any(m.id == self.params["model"] for m in models.data):
                return
        except openai.AuthenticationError as e:
            raise self._auth_error(e) from None
        except openai.APIConnectionError as e:
            raise PreflightError(f"cannot reach {self.params['base_url']}: {_root_cause(e)}") from None
        except (openai.APIStatusError, openai.APIResponseValidationError, json.JSONDecodeError, TypeError, AttributeError):
            pass  # no usable /models route: fall back to a chat completion
        try:
            await self.client.chat.completions.create(
                **{**self._body([Message(role="user", content="ping")]), "max_tokens": 1}
            )
        except openai.AuthenticationError as e:
            raise self._auth_error(e) from None
        except openai.NotFoundError:
            raise PreflightError(
                f"{self.params['base_url']}: model '{self.params['model']}' or the chat-completions route was not found (HTTP 404)"
            ) from None
        except openai.APIConnectionError as e:
            raise PreflightError(f"cannot reach {self.params['base_url']}: {_root_cause(e)}") from None
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError):
            return  # reachable and authorised; transient trouble is the engine's business
        except openai.BadRequestError as e:
            raise PreflightError(f"{self.params['base_url']} refused a minimal request: {e.message}") from None

    def _auth_error(self, e: openai.APIStatusError) -> PreflightError:
        return PreflightError(
            f"{self.params['base_url']} rejected the API key from ${self.params['api_key_env']} "
            f"(HTTP {e.status_code}); set {self.params['api_key_env']} to a valid key"
        )

    async def generate(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        t0 = time.perf_counter()
        try:
            # client.post skips the SDK's per-call TypedDict transform (~1 ms of CPU per request);
            # the body we build is already plain JSON, and the response is parsed the same way.
            resp = await self.client.post("/chat/completions", body=self._body(messages), cast_to=ChatCompletion)
        except openai.RateLimitError as e:
            raise TransientError(f"HTTP 429: {e.message}", kind="rate_limited", retry_after=_retry_after(e.response)) from None
        except openai.InternalServerError as e:
            raise TransientError(f"HTTP {e.status_code}: {e.message}", kind=f"http_{e.status_code}",
                                 retry_after=_retry_after(e.response)) from None
        except openai.APITimeoutError:
            raise TransientError(f"no answer within {self.params['timeout']:g}s", kind="timeout") from None
        except openai.APIConnectionError as e:
            raise TransientError(f"connection error: {_root_cause(e)}", kind="connection") from None
        except openai.APIStatusError as e:
            if e.status_code == 408 or e.status_code >= 500:
                raise TransientError(f"HTTP {e.status_code}: {e.message}", kind=f"http_{e.status_code}") from None
            raise PermanentError(f"HTTP {e.status_code}: {e.message}", kind=f"http_{e.status_code}") from None
        except (json.JSONDecodeError, openai.APIResponseValidationError) as e:
            raise TransientError(f"malformed response from server: {e}", kind="malformed") from None
        latency = time.perf_counter() - t0
        if not getattr(resp, "choices", None):
            raise TransientError("malformed response from server: no choices", kind="malformed")
        choice = resp.choices[0]
        msg = choice.message
        tool_calls = [tc.model_dump() for tc in msg.tool_calls] if getattr(msg, "tool_calls", None) else None
        usage = resp.usage
        return Completion(
            text=msg.content or "", latency_s=latency, finish_reason=choice.finish_reason, tool_calls=tool_calls,
            prompt_tokens=getattr(usage, "prompt_tokens", None), completion_tokens=getattr(usage, "completion_tokens", None),
        )

    async def aclose(self) -> None:
        for c in self._clients:
            await c.close()
        self._clients = []


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    return str(e) or type(e).__name__
