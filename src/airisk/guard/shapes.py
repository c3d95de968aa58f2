"""Every text an OpenAI-style chat request or response carries, so the guard can check all of it.

The proxy must not return text it has not checked. Fields here are read by their documented
shape; anything the guard does not know how to read (an unknown content-part type, an image, audio
without a transcript, a message that is not an object) raises ``Unverifiable`` and the proxy
refuses it (fail closed). Unknown *keys* are not a reason to refuse: every string under them is
collected and checked like any other text, so a provider-specific field (``reasoning``,
``provider_specific_fields`` ...) cannot smuggle unchecked text through.

Input role policy (``input_segments``): by default every role's text is checked at the input stage,
``system``, ``developer``, ``tool`` and earlier ``assistant``/``user`` turns included, because a
client controls all of them (a jailbreak placed in a forged assistant turn or a tool result reaches
the model just the same); ``name`` fields and tool-call arguments in the history too. A deployment
that trusts its own system prompt can narrow ``proxy.input_roles``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TEXT_PARTS = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal"}
MEDIA_PARTS = frozenset({"image_url", "input_image", "image", "input_audio", "audio", "file", "input_file"})
# message keys read structurally below; any other key's strings are collected generically
_STRUCTURED = frozenset({"role", "content", "tool_calls", "function_call", "audio"})
# response fields kept as they are (no free text in them); logprobs are removed because their
# tokens spell the answer out again, unchecked
RESPONSE_KEYS = ("id", "object", "created", "model", "usage", "system_fingerprint", "service_tier")
CHOICE_KEYS = ("index", "finish_reason")
MAX_DEPTH = 32
# field names of the OpenAI shapes: a key outside this set is itself text the guard checks
KNOWN_KEYS = frozenset({
    "role", "content", "name", "refusal", "reasoning_content", "reasoning", "tool_call_id", "tool_calls",
    "function_call", "function", "arguments", "audio", "transcript", "annotations", "type", "text", "id", "index",
    "finish_reason", "url", "title", "start_index", "end_index", "url_citation", "data", "expires_at", "format",
    "image_url", "input_audio", "file", "file_id", "filename", "file_data", "detail", "cache_control", "description",
    "parameters", "properties", "required", "strict", "json_schema", "schema", "items", "enum", "custom", "input",
    "metadata", "prediction", "tools", "response_format", "stop", "tool_choice", "logprobs", "top_logprobs",
})
# request fields that carry no text the model reads (or are handled on their own: messages, user)
REQUEST_SKIP = frozenset({"messages", "model", "user", "stream", "stream_options", "n", "temperature", "top_p",
                          "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty", "seed",
                          "logit_bias", "logprobs", "top_logprobs", "service_tier", "reasoning_effort", "modalities",
                          "parallel_tool_calls", "store"})


_IDENT = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


_META = re.compile(r"^[A-Za-z0-9_.:/@+-]{1,200}$")


def meta(x: Any) -> Any:
    """A pass-through metadata value (id, model, finish_reason ...): numbers and short identifiers
    only; anything else could carry unchecked text and becomes None."""
    if x is None or isinstance(x, (bool, int, float)):
        return x
    return x if isinstance(x, str) and _META.match(x) else None


def numbers_only(x: Any, depth: int = 0) -> Any:
    """``usage`` and the like: the structure with its numbers, strings dropped."""
    if depth > 8:
        return None
    if isinstance(x, dict):
        return {k: numbers_only(v, depth + 1) for k, v in x.items() if isinstance(k, str) and _META.match(k)}
    if isinstance(x, list):
        return [numbers_only(v, depth + 1) for v in x[:64]]
    return x if x is None or isinstance(x, (bool, int, float)) else None


def show(x: Any) -> str:
    """A field name or value fit for an error message or a label: model- or client-written text
    must never come back through them unchecked, so anything but a short identifier is elided."""
    return x if isinstance(x, str) and (x in KNOWN_KEYS or _IDENT.match(x)) else "<...>"


class Unverifiable(ValueError):
    """A request or response shape the guard cannot check; ``where`` names the field."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")
        self.where, self.why = where, why


@dataclass(slots=True)
class Segment:
    """One text to check: where it is (a JSON path), and the role of its message (if any)."""

    where: str
    text: str
    role: str | None = None


@dataclass(slots=True)
class ToolCall:
    where: str
    name: str
    arguments: str  # the raw JSON string (or free-form input of a custom tool)
    id: str | None = None
    kind: str = "function"  # or "custom" (free-form input)


@dataclass
class ChoiceTexts:
    index: int
    segments: list[Segment] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)


def strings(obj: Any, where: str, *, skip: frozenset = frozenset(), depth: int = 0) -> list[Segment]:
    """Every string (keys included) in a JSON value, with its path; past MAX_DEPTH: Unverifiable."""
    if depth > MAX_DEPTH:
        raise Unverifiable(where, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(obj, str):
        return [Segment(where, obj)] if obj.strip() else []
    out: list[Segment] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in skip:
                continue
            if isinstance(k, str) and k not in KNOWN_KEYS and k.strip():  # an unknown key is text too
                out.append(Segment(f"{where}.<key>", k))
            out += strings(v, f"{where}.{show(k)}", depth=depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += strings(v, f"{where}[{i}]", depth=depth + 1)
    return out  # numbers, booleans, null carry no text


def _parts(content: Any, where: str, *, allow_media: bool) -> list[Segment]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Segment(where, content)] if content.strip() else []
    if not isinstance(content, list):
        raise Unverifiable(where, f"content must be a string, a list of parts or null, not {type(content).__name__}")
    out: list[Segment] = []
    for i, part in enumerate(content):
        w = f"{where}[{i}]"
        if isinstance(part, str):
            out += _parts(part, w, allow_media=allow_media)
            continue
        if not isinstance(part, dict):
            raise Unverifiable(w, "a content part must be an object")
        kind = part.get("type", "text" if "text" in part else None)
        if kind in TEXT_PARTS:
            value = part.get(TEXT_PARTS[kind])
            if value is not None and not isinstance(value, str):
                raise Unverifiable(f"{w}.{TEXT_PARTS[kind]}", "text of a part must be a string")
            out += strings({k: v for k, v in part.items() if k != "type"}, w)
        elif kind in MEDIA_PARTS:
            if not allow_media:
                raise Unverifiable(w, f"a '{show(kind)}' part cannot be checked by a text guard (set proxy.allow_media "
                                      "to pass media unchecked)")
        else:
            raise Unverifiable(w, f"unknown content part type {show(kind)!r}")
    return out


def _tool_calls(msg: dict[str, Any], where: str) -> list[ToolCall]:
    out: list[ToolCall] = []
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise Unverifiable(f"{where}.tool_calls", "must be a list")
        for i, tc in enumerate(calls):
            w = f"{where}.tool_calls[{i}]"
            if not isinstance(tc, dict):
                raise Unverifiable(w, "a tool call must be an object")
            kind = tc.get("type", "function")
            body = tc.get(kind) if kind in ("function", "custom") else None
            if not isinstance(body, dict):
                raise Unverifiable(w, f"unknown tool call type {show(kind)!r}")
            args = body.get("arguments" if kind == "function" else "input", "")
            if isinstance(args, (dict, list)):  # some servers send parsed arguments
                import json
                args = json.dumps(args)
            if not isinstance(args, str) or not isinstance(body.get("name", ""), str):
                raise Unverifiable(w, "tool call name and arguments must be strings")
            out.append(ToolCall(w, body.get("name") or "", args or "", tc.get("id") if isinstance(tc.get("id"), str) else None, kind))
    fc = msg.get("function_call")  # the legacy single call
    if fc is not None:
        if not isinstance(fc, dict) or not isinstance(fc.get("name", ""), str) or not isinstance(fc.get("arguments", ""), str):
            raise Unverifiable(f"{where}.function_call", "must be an object with string name and arguments")
        out.append(ToolCall(f"{where}.function_call", fc.get("name") or "", fc.get("arguments") or ""))
    return out


def _audio(msg: dict[str, Any], where: str, allow_media: bool) -> list[Segment]:
    audio = msg.get("audio")
    if audio is None:
        return []
    if not isinstance(audio, dict):
        raise Unverifiable(f"{where}.audio", "must be an object")
    if audio.get("data") and not allow_media:  # the sound itself may say something else than the transcript
        raise Unverifiable(f"{where}.audio", "audio data cannot be checked (set proxy.allow_media to pass it unchecked)")
    if audio.get("transcript") is not None and not isinstance(audio.get("transcript"), str):
        raise Unverifiable(f"{where}.audio.transcript", "must be a string")
    return strings({k: v for k, v in audio.items() if k != "data"}, f"{where}.audio")


def message_texts(msg: Any, where: str, *, allow_media: bool = False) -> tuple[list[Segment], list[ToolCall]]:
    """Texts and tool calls of one message (request history or response choice)."""
    if not isinstance(msg, dict):
        raise Unverifiable(where, "a message must be an object")
    role = msg.get("role")
    if role is not None and role not in ROLES:
        raise Unverifiable(f"{where}.role", f"unknown role {show(role)!r}")
    segs = _parts(msg.get("content"), f"{where}.content", allow_media=allow_media)
    segs += _audio(msg, where, allow_media)
    calls = _tool_calls(msg, where)
    for i, tc in enumerate(msg.get("tool_calls") or []):  # ids, types and any extra fields are text too
        body = tc.get(tc.get("type", "function")) if isinstance(tc.get(tc.get("type", "function")), dict) else {}
        segs += strings({k: v for k, v in tc.items() if k not in ("function", "custom")}, f"{where}.tool_calls[{i}]")
        segs += strings({k: v for k, v in body.items() if k not in ("name", "arguments", "input")}, f"{where}.tool_calls[{i}]")
    if isinstance(msg.get("function_call"), dict):
        segs += strings({k: v for k, v in msg["function_call"].items() if k not in ("name", "arguments")}, f"{where}.function_call")
    for tc in calls:  # the function name and the arguments are model-written text
        segs += [Segment(f"{tc.where}.name", tc.name)] if tc.name.strip() else []
        segs += [Segment(f"{tc.where}.arguments", tc.arguments)] if tc.arguments.strip() else []
    segs += strings({k: v for k, v in msg.items() if k not in _STRUCTURED}, where)  # name, refusal, reasoning ...
    for s in segs:
        s.role = role
    return segs, calls


def input_segments(messages: list[Any], *, roles: tuple[str, ...] | list[str] = ROLES,
                   allow_media: bool = False) -> list[Segment]:
    """Every text of the conversation in messages of the given roles (see the module docstring)."""
    out: list[Segment] = []
    for i, m in enumerate(messages):
        segs, _ = message_texts(m, f"messages[{i}]", allow_media=allow_media)
        role = m.get("role")
        if role not in ROLES:
            raise Unverifiable(f"messages[{i}].role", f"unknown role {show(role)!r}")
        if role in roles:
            out += segs
    return out


def request_segments(body: dict[str, Any], *, roles: tuple[str, ...] | list[str] = ROLES,
                     allow_media: bool = False) -> list[Segment]:
    """Every text of a chat request the model will read: the conversation (``input_segments``) and
    request-level fields such as tool definitions, response formats and predictions."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise Unverifiable("messages", "must be a list")
    return input_segments(messages, roles=roles, allow_media=allow_media) + \
        strings({k: v for k, v in body.items() if k not in REQUEST_SKIP}, "request")


def response_choices(data: Any, *, allow_media: bool = False) -> list[ChoiceTexts]:
    """The texts and tool calls of every choice of a chat.completion; Unverifiable if the shape is unknown."""
    if not isinstance(data, dict):
        raise Unverifiable("<response>", "not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Unverifiable("choices", "missing or empty")
    out = []
    for i, ch in enumerate(choices):
        w = f"choices[{i}]"
        if not isinstance(ch, dict) or not isinstance(ch.get("message"), dict):
            raise Unverifiable(w, "a choice must be an object with a message object")
        segs, calls = message_texts(ch["message"], f"{w}.message", allow_media=allow_media)
        segs += strings({k: v for k, v in ch.items() if k not in ("message", "logprobs", *CHOICE_KEYS)}, w)
        out.append(ChoiceTexts(ch.get("index", i) if isinstance(ch.get("index"), int) else i, segs, calls))
    return out


def sanitized_response(data: dict[str, Any]) -> dict[str, Any]:
    """The response with only fields the guard has checked or that carry no text: metadata reduced
    to numbers and identifiers, usage to numbers; logprobs and unknown top-level fields dropped."""
    out: dict[str, Any] = {k: meta(data[k]) for k in RESPONSE_KEYS if k in data and k != "usage"}
    if "usage" in data:
        out["usage"] = numbers_only(data["usage"])
    out["choices"] = [{**{k: meta(ch[k]) for k in CHOICE_KEYS if k in ch}, "message": ch["message"], "logprobs": None,
                       **{k: v for k, v in ch.items() if k not in ("message", "logprobs", *CHOICE_KEYS)}}
                      for ch in data["choices"]]
    return out
