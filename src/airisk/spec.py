"""One grammar for every spec string: systems, judges, attacks, mutators and agents.

::

    spec   := name                      offline
            | name ":" params           openai:model=llama3,base_url=http://localhost:11434/v1
            | name "[" params "]"       translate[lang=fr]
    params := key "=" value ("," key "=" value)*
    key    := letter or _, then letters, digits, _ . -     (rubric.model is a key)
    value  := a JSON literal (3, 0.7, true, null, [1, 2], {"a": 1}, "quoted, with commas")
              or bare text (gpt-4o-mini, http://host:8000/v1); true/false in any case

The two forms are the same; in comma-separated lists (``--attacks``) use brackets, since a comma
inside ``[...]``, ``{...}`` or quotes never separates list entries or parameters. Mutator chains
join terms with ``+`` (``base64+roleplay[variant=all]``).

Strictness, everywhere: a key given twice is an error; a key the component does not accept is an
error listing the accepted ones; a value that cannot be read as the type the component declares
(``int``, ``float``, ``bool``) is an error naming the key. A parameter declared ``str`` gets the
text exactly as written (``model=1.5`` stays ``"1.5"``).
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from airisk.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][\w\-.]*")
_KEY = re.compile(r"[A-Za-z_][\w.\-]*")
_OPEN, _CLOSE = "[{", "]}"
_BOOL = {"true": True, "false": False}


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the component's name, typed parameters and the text each value was written as."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    text: str = ""


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets, braces and double quotes; empty parts are dropped."""
    parts: list[str] = []
    depth, quoted = 0, False
    cur: list[str] = []
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in _OPEN:
            depth += 1
        elif not quoted and ch in _CLOSE:
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def value(text: str) -> Any:
    """A parameter value: a JSON literal when it is one, true/false in any case, otherwise the text."""
    low = text.lower()
    if low in _BOOL:
        return _BOOL[low]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(text: str, *, what: str = "spec", accepted: Iterable[str] | None = None,
                 required: Iterable[str] = ()) -> dict[str, Any]:
    """``key=value,...`` into a dict of typed values; duplicates, and keys outside ``accepted``, rejected.

    Args:
        text: the parameter list (without the name).
        what: how error messages name the spec (``--judge``, ``system spec 'openai:...'``).
        accepted: the keys allowed (None: any).
        required: keys that must be present.
    """
    return _params(text, what, accepted, required)[0]


def _params(text: str, what: str, accepted: Iterable[str] | None = None,
            required: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    params: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for part in split_top(text):
        key, eq, val = part.partition("=")
        key = key.strip()
        if not eq or not _KEY.fullmatch(key):
            raise ConfigError(f"{what}: expected key=value, got {part!r}")
        if key in params:
            raise ConfigError(f"{what}: parameter {key!r} given twice")
        raw[key] = val.strip()
        params[key] = value(raw[key])
    if accepted is not None:
        allowed = list(accepted)
        unknown = [k for k in params if k not in allowed]
        if unknown:
            raise ConfigError(f"{what}: unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(allowed) or '(none)'}")
    missing = [k for k in required if k not in params]
    if missing:
        raise ConfigError(f"{what}: needs {', '.join(f'{k}=...' for k in missing)}")
    return params, raw


def parse(text: str, *, what: str = "spec") -> Spec:
    """``name``, ``name:k=v,...`` or ``name[k=v,...]`` into a :class:`Spec`.

    Args:
        text: the spec string.
        what: the kind of spec, for error messages (``system``, ``judge``, ``attack``, ``agent``).
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{what} spec is empty; expected 'name' or 'name:key=value,...'")
    s = text.strip()
    m = _NAME.match(s)
    if not m:
        raise ConfigError(f"{what} spec {text!r}: bad name; expected 'name' or 'name:key=value,...'")
    name, rest = m.group(0), s[m.end():]
    label = f"{what} spec {text!r}"
    if not rest:
        body = ""
    elif rest.startswith(":"):
        body = rest[1:]
    elif rest.startswith("[") and rest.endswith("]"):
        body = rest[1:-1]
    else:
        raise ConfigError(f"{label}: expected 'name', 'name:key=value,...' or 'name[key=value,...]'")
    params, raw = _params(body, label)
    return Spec(name=name, params=params, raw=raw, text=s)


def build(cls: Any, spec: Spec, *, what: str = "component", overrides: dict[str, Any] | None = None) -> Any:
    """Instantiate ``cls`` with the spec's parameters, checked against its signature.

    Unknown keys fail listing the accepted ones (unless the constructor takes ``**kwargs``); values
    are converted to the declared ``str``/``int``/``float``/``bool`` types or fail naming the key.
    """
    params = dict(spec.params)
    raw = dict(spec.raw)
    if overrides:
        params.update(overrides)
        for k in overrides:
            raw.pop(k, None)
    label = f"{what} '{spec.name}'"
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # builtins and C types: no signature to check against
        sig = None
    if sig is not None:
        named = {n: p for n, p in sig.parameters.items()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            unknown = [k for k in params if k not in named]
            if unknown:
                raise ConfigError(f"{label}: unknown parameter(s) {', '.join(unknown)}; "
                                  f"accepted: {', '.join(named) or '(none)'}")
        for k, p in named.items():
            if k in params:
                params[k] = _as_declared(p.annotation, params[k], raw.get(k), f"{label}: parameter {k!r}")
    try:
        return cls(**params)
    except TypeError as e:
        # A constructor taking **kwargs passes them on; the callee names the key it does not know.
        m = re.search(r"unexpected keyword argument '([^']+)'", str(e))
        if m:
            raise ConfigError(f"{label}: unknown parameter {m.group(1)!r}") from None
        raise ConfigError(f"{label}: {e}") from None
    except (ValueError, OverflowError) as e:  # a plugin's own check of a value (e.g. temperature=hot)
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{label}: {e}") from None


def _as_declared(annotation: Any, val: Any, raw: str | None, where: str) -> Any:
    """Convert ``val`` to a simple declared type (str/int/float/bool); leave anything else as parsed."""
    if annotation is inspect.Parameter.empty or raw is None:
        return val
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    kinds = set(re.findall(r"\b(str|int|float|bool)\b", ann))
    if not kinds:
        return val
    if kinds == {"str"}:
        return raw  # exactly as written: model=1.5 is the model "1.5"
    if "str" in kinds or (val is None and "None" in ann):
        return val
    if isinstance(val, bool):
        ok = "bool" in kinds
    else:
        ok = isinstance(val, int) and bool({"int", "float"} & kinds) or isinstance(val, float) and "float" in kinds
    if ok:
        return float(val) if kinds == {"float"} else val
    raise ConfigError(f"{where} must be {' or '.join(sorted(kinds))}, got {raw!r}")
