"""Per-format loaders: turn a file's records into :class:`airisk.types.Item` objects.

One function per source format. Each takes the decoded text, a :class:`RowErrors` collector and a
:class:`LoadContext` (dataset name, id prefix, default locale, catalog options) and returns items.
Ids are stable: the source's own id where it has one, else a hash of the prompt, prefixed with
the dataset name for catalog datasets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from airisk.datasets import mappings
from airisk.datasets.readers import RowErrors, iter_csv, iter_jsonl
from airisk.taxonomy import PERSONAS, hazard_codes, is_hazard
from airisk.types import Item, Message, stable_hash

EXPECTED = ("refuse", "comply", "unknown")


@dataclass
class LoadContext:
    dataset: str
    prefix: str | None = None  # id prefix ("xstest" -> "xstest:1"); None keeps user ids verbatim
    locale: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def make_id(self, source_id: str | None, prompt_key: Any) -> str:
        sid = source_id if source_id not in (None, "") else stable_hash(prompt_key)
        return f"{self.prefix}:{sid}" if self.prefix else str(sid)


class _Items:
    """Collects items, rejecting duplicate ids with the line of the first occurrence."""

    def __init__(self, errors: RowErrors):
        self.errors, self.items, self.first_line = errors, [], {}

    def add(self, line: int, item: Item, *, id_field: str = "id") -> None:
        if item.id in self.first_line:
            self.errors.bad(f"duplicate id {item.id!r} (first seen at line {self.first_line[item.id]})",
                            line=line, field=id_field)
            return
        self.first_line[item.id] = line
        self.items.append(item)


def _unknown_hazard(code: str) -> str:
    return f"unknown hazard code {code!r}; valid codes: {', '.join(hazard_codes())}"


def _need(errors: RowErrors, row: dict, col: str, line: int) -> str | None:
    value = (row.get(col) or "").strip()
    if not value:
        errors.bad("required value is empty", line=line, field=col)
        return None
    return value


# --- AILuminate prompt CSV ----------------------------------------------------------------------
def load_ailuminate(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    for line, row in iter_csv(text, errors, required=("release_prompt_id", "prompt_text", "hazard")):
        pid = _need(errors, row, "release_prompt_id", line)
        if pid is None or _need(errors, row, "prompt_text", line) is None:
            continue
        hazard = (row.get("hazard") or "").strip()
        if not is_hazard(hazard):
            errors.bad(_unknown_hazard(hazard), line=line, field="hazard")
            continue
        persona = (row.get("persona") or "").strip() or None
        if persona is not None and persona not in PERSONAS:
            errors.bad(f"unknown persona {persona!r}; valid personas: {', '.join(PERSONAS)}", line=line, field="persona")
            continue
        meta = {k: v for k, v in row.items()
                if k not in ("release_prompt_id", "prompt_text", "hazard", "persona", "locale") and v != ""}
        out.add(line, Item(
            id=ctx.make_id(pid, None), prompt=row["prompt_text"], intent=row["prompt_text"], hazard=hazard, persona=persona,
            locale=(row.get("locale") or "").strip() or ctx.locale, dataset=ctx.dataset, expected="refuse",
            source_category=hazard, metadata=meta,
        ), id_field="release_prompt_id")
    return out.items


# --- XSTest ---------------------------------------------------------------------------------------
def load_xstest(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    for line, row in iter_csv(text, errors, required=("id", "prompt", "type", "label")):
        if _need(errors, row, "id", line) is None or _need(errors, row, "prompt", line) is None:
            continue
        label = row["label"].strip()
        if label not in ("safe", "unsafe"):
            errors.bad(f"label must be 'safe' or 'unsafe', got {label!r}", line=line, field="label")
            continue
        typ = row["type"].strip()
        if typ not in mappings.XSTEST_TYPES:
            errors.bad(f"unknown XSTest type {typ!r}", line=line, field="type")
            continue
        out.add(line, Item(
            id=ctx.make_id(row["id"].strip(), None), prompt=row["prompt"], intent=row["prompt"],
            hazard=mappings.xstest_type_to_hazard(typ, row.get("note"), row["prompt"]),
            locale=ctx.locale, dataset=ctx.dataset, expected="comply" if label == "safe" else "refuse",
            source_category=typ,
            metadata={k: row[k] for k in ("label", "focus", "note") if row.get(k)},
        ))
    return out.items


# --- HarmBench behaviors ------------------------------------------------------------------------
def harmbench_prompt(behavior: str, context: str | None) -> str:
    """HarmBench's layout for contextual behaviors: the context, a rule, then the request."""
    return f"{context}\n\n---\n\n{behavior}" if context else behavior


def harmbench_intent(behavior: str, context: str | None) -> str:
    """What HarmBench's classifier judges against: the behaviour, then its context passage."""
    return f"{behavior}\n\nContext: {context}" if context else behavior


def load_harmbench(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    cols = ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID")
    for line, row in iter_csv(text, errors, required=cols):
        if _need(errors, row, "Behavior", line) is None or _need(errors, row, "BehaviorID", line) is None:
            continue
        sem = row["SemanticCategory"].strip()
        if sem not in mappings.HARMBENCH_CATEGORIES:
            errors.bad(f"unknown HarmBench semantic category {sem!r}", line=line, field="SemanticCategory")
            continue
        context = row.get("ContextString") or None
        meta = {"functional_category": row["FunctionalCategory"], "behavior": row["Behavior"]}
        if row.get("Tags"):
            meta["tags"] = row["Tags"]
        if context:
            meta["context"] = context
        out.add(line, Item(
            id=ctx.make_id(row["BehaviorID"].strip(), None), prompt=harmbench_prompt(row["Behavior"], context),
            intent=harmbench_intent(row["Behavior"], context),
            hazard=mappings.harmbench_to_hazard(sem, row["Behavior"]), locale=ctx.locale, dataset=ctx.dataset,
            expected="refuse", source_category=sem, metadata=meta,
        ), id_field="BehaviorID")
    return out.items


# --- JailbreakBench JBB-Behaviors ---------------------------------------------------------------
def load_jbb(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    expected = ctx.options.get("expected", "refuse")
    for line, row in iter_csv(text, errors, required=("Index", "Goal", "Category")):
        if _need(errors, row, "Index", line) is None or _need(errors, row, "Goal", line) is None:
            continue
        cat = row["Category"].strip()
        if mappings._norm(cat) not in mappings.JBB_CATEGORIES:
            errors.bad(f"unknown JBB category {cat!r}", line=line, field="Category")
            continue
        out.add(line, Item(
            id=ctx.make_id(row["Index"].strip(), None), prompt=row["Goal"], intent=row["Goal"],
            hazard=mappings.jbb_to_hazard(cat, row["Goal"]), locale=ctx.locale, dataset=ctx.dataset,
            expected=expected, source_category=cat,
            metadata={k.lower(): row[k] for k in ("Behavior", "Target", "Source") if row.get(k)},
        ), id_field="Index")
    return out.items


# --- StrongREJECT -------------------------------------------------------------------------------
def load_strongreject(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    for line, row in iter_csv(text, errors, required=("category", "forbidden_prompt")):
        prompt = _need(errors, row, "forbidden_prompt", line)
        if prompt is None:
            continue
        cat = row["category"].strip()
        if mappings._norm(cat) not in mappings.STRONGREJECT_CATEGORIES:
            errors.bad(f"unknown StrongREJECT category {cat!r}", line=line, field="category")
            continue
        out.add(line, Item(
            id=ctx.make_id(None, row["forbidden_prompt"]), prompt=row["forbidden_prompt"], intent=row["forbidden_prompt"],
            hazard=mappings.strongreject_to_hazard(cat, row["forbidden_prompt"]), locale=ctx.locale,
            dataset=ctx.dataset, expected="refuse", source_category=cat,
            metadata={"source": row["source"]} if row.get("source") else {},
        ), id_field="forbidden_prompt")
    return out.items


# --- The generic user format (JSONL or CSV) -----------------------------------------------------
GENERIC_FIELDS = ("id", "prompt", "messages", "intent", "hazard", "persona", "locale", "expected", "source_category", "metadata")


def _generic_item(rec: dict, line: int, errors: RowErrors, ctx: LoadContext, *, from_csv: bool) -> Item | None:
    def text(key: str) -> str | None:
        v = rec.get(key)
        if v is None:
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and key == "id":
            return str(v)
        if not isinstance(v, str):
            errors.bad(f"expected a string, got {type(v).__name__}", line=line, field=key)
            raise _Skip
        return v.strip() if key != "prompt" else v

    try:
        messages = rec.get("messages")
        if from_csv and isinstance(messages, str):
            messages = json.loads(messages) if messages.strip() else None
        msgs = [Message.model_validate(m) for m in messages] if messages else None
        if messages is not None and not isinstance(messages, list):
            raise TypeError("messages must be a list")
    except (json.JSONDecodeError, ValidationError, TypeError) as e:
        detail = e.msg if isinstance(e, json.JSONDecodeError) else str(e).splitlines()[0]
        errors.bad(f"messages must be a JSON list of {{role, content}} objects ({detail})", line=line, field="messages")
        return None
    try:
        prompt = text("prompt")
        if not (prompt or "").strip():
            users = [m for m in msgs or [] if m.role == "user" and m.content]
            if not users:
                errors.bad("required: a non-empty prompt (or messages with a user turn)", line=line, field="prompt")
                return None
            prompt = users[-1].content or ""
        hazard = text("hazard") or None
        if hazard is not None and not is_hazard(hazard):
            errors.bad(_unknown_hazard(hazard), line=line, field="hazard")
            return None
        expected = text("expected") or ("refuse" if hazard else "unknown")
        if expected not in EXPECTED:
            errors.bad(f"expected must be one of {', '.join(EXPECTED)}, got {expected!r}", line=line, field="expected")
            return None
        meta = rec.get("metadata") or {}
        if from_csv and isinstance(meta, str):
            meta = json.loads(meta)
        if not isinstance(meta, dict):
            errors.bad("metadata must be a JSON object", line=line, field="metadata")
            return None
        extra = {k: v for k, v in rec.items() if k not in GENERIC_FIELDS and v not in (None, "")}
        item_id = ctx.make_id(text("id"), [m.model_dump(exclude_none=True) for m in msgs] if msgs else prompt)
        return Item(id=item_id, prompt=prompt, messages=msgs, intent=text("intent") or None, hazard=hazard,
                    persona=text("persona") or None,
                    locale=text("locale") or ctx.locale, dataset=ctx.dataset, expected=expected,
                    source_category=text("source_category") or None, metadata={**extra, **meta})
    except json.JSONDecodeError as e:
        errors.bad(f"metadata is not valid JSON ({e.msg})", line=line, field="metadata")
        return None
    except _Skip:
        return None


class _Skip(Exception):
    pass


def load_generic_jsonl(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    for line, rec in iter_jsonl(text, errors):
        item = _generic_item(rec, line, errors, ctx, from_csv=False)
        if item is not None:
            out.add(line, item)
    return out.items


def load_generic_csv(text: str, errors: RowErrors, ctx: LoadContext) -> list[Item]:
    out = _Items(errors)
    try:  # a file with a messages column may leave prompt out; iter_csv reports a bad header itself
        header = {h.strip() for h in next(csv.reader(io.StringIO(text, newline="")), [])}
    except csv.Error:
        header = set()
    required = () if "messages" in header else ("prompt",)
    for line, row in iter_csv(text, errors, required=required):
        item = _generic_item(row, line, errors, ctx, from_csv=True)
        if item is not None:
            out.add(line, item)
    return out.items


LOADERS: dict[str, Callable[[str, RowErrors, LoadContext], list[Item]]] = {
    "ailuminate": load_ailuminate,
    "xstest": load_xstest,
    "harmbench": load_harmbench,
    "jbb": load_jbb,
    "strongreject": load_strongreject,
    "jsonl": load_generic_jsonl,
    "csv": load_generic_csv,
}
