"""Bounded YAML loading for policies and configs that may come from someone careless or hostile.

``yaml.safe_load`` builds no arbitrary objects, but it still accepts documents whose cost is out of
proportion to their size: a "billion laughs" document (anchors referring to anchors) is a few
hundred bytes and expands to billions of nodes for whoever walks it (a validator, a line index,
``json.dumps``); nesting a few thousand levels deep overflows the recursive composer; a 5,000-digit
integer trips Python's int-conversion limit; duplicate keys silently keep the last value. This
module refuses all of those before any of them costs memory or time, and every error is a
:class:`ConfigError` naming the source and the line::

    data, lines = load_yaml(text, "policy.yaml")      # lines: {("tools", "shell", "kind"): 5, ...}
    text = read_config_text(path)                     # UTF-8 only; names the line of a bad byte

Limits (per document): ``max_bytes`` of text, ``max_depth`` levels of nesting, ``max_aliases``
alias uses and ``max_nodes`` nodes *after* expanding aliases (counted on the composed graph, in
time linear in its size, without expanding anything), and integers of at most ``MAX_INT_DIGITS`` digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from airisk.errors import ConfigError

MAX_BYTES = 256_000  # real policies are a few KB; pure-Python YAML costs ~10 us per node
MAX_DEPTH = 32  # real policies nest < 12 (JSON Schemas included); the scanner is slow on deep flow
MAX_ALIASES = 200
MAX_NODES = 50_000
MAX_INT_DIGITS = 64


class _Refused(yaml.YAMLError):
    def __init__(self, message: str, mark: Any = None):
        super().__init__(message)
        self.problem, self.problem_mark = message, mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts depth and aliases while composing and checks keys and integers."""

    max_depth = MAX_DEPTH
    max_aliases = MAX_ALIASES
    max_nodes = MAX_NODES

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        self._nodes += 1
        if self._nodes > self.max_nodes:  # stop composing early, not after the whole document
            raise _Refused(f"more than {self.max_nodes} nodes: refused", self.peek_event().start_mark)
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.max_aliases:
                raise _Refused(f"more than {self.max_aliases} aliases (*refs): refused", self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise _Refused(f"nested deeper than {self.max_depth} levels: refused", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = self.construct_object(key_node)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue
                if first is not None:
                    raise _Refused(f"duplicate key {key!r} (first on line {first})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):  # type: ignore[override]
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _Refused(f"integer with {digits} digits (at most {MAX_INT_DIGITS}): refused", node.start_mark)
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:map", _BoundedLoader.construct_yaml_map)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the document once aliases are expanded, computed on the shared graph (memoised by
    node identity, iterative), so a billion-laughs document is measured without being expanded."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    on_path: set[int] = set()
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            children = _children(node)
            total = 1 + sum(size[id(c)] for c in children)
            size[nid] = min(total, limit + 1)
            continue
        if nid in size:
            continue
        if nid in on_path:  # a recursive alias (an anchor used inside itself)
            return limit + 1
        on_path.add(nid)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def line_index(node: yaml.Node | None) -> dict[tuple, int]:
    """Map each path (tuple of keys / indexes) in a document to its 1-based line (aliases not followed)."""
    out: dict[tuple, int] = {}
    if node is None:
        return out
    stack: list[tuple[yaml.Node, tuple]] = [(node, ())]
    seen: set[int] = set()
    while stack:
        n, path = stack.pop()
        out.setdefault(path, n.start_mark.line + 1)
        if id(n) in seen:  # an alias: its lines are those of the anchor, already indexed
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                out[path + (key,)] = k.start_mark.line + 1
                stack.append((v, path + (key,)))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                out[path + (i,)] = v.start_mark.line + 1
                stack.append((v, path + (i,)))
    return out


def _flow_depth_line(text: str, max_depth: int) -> int | None:
    """The line where flow brackets (``[`` / ``{``) first nest deeper than ``max_depth``, or None.

    PyYAML's scanner keeps one "possible simple key" per open flow level and walks them all for
    every token, so it spends time quadratic in the nesting before the parser (and our depth
    limit) sees anything: 5,000 ``[`` took 3.4 s, a 1 MB document would take hours. This linear
    pre-scan (quotes and comments skipped, roughly as YAML does) refuses such documents first."""
    depth, line, quote, i, n = 0, 1, "", 0, len(text)
    prev = "\n"
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        if quote:  # quoted scalars may span lines

            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (prev in " \t\n[{,:" ):
            quote = ch
        elif ch == "#" and prev in " \t\n":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return line
        elif ch in "]}":
            depth = max(0, depth - 1)
        prev = ch
        i += 1
    return None


def _where(source: str, mark: Any) -> str:
    return f"{source}:{mark.line + 1}" if mark is not None else source


def load_yaml(text: str, source: str = "<yaml>", *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
              max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES,
              label: str = "invalid YAML") -> tuple[Any, dict[tuple, int]]:
    """Parse one YAML document within the limits; returns ``(data, line_index)``.

    Raises ``ConfigError("<source>:<line>: <label>: <problem>")`` for syntax errors and for
    documents over a limit.
    """
    if len(text) > max_bytes:
        raise ConfigError(f"{source}: {len(text)} characters, more than the {max_bytes} allowed: refused")
    deep = _flow_depth_line(text, max_depth)
    if deep is not None:
        raise ConfigError(f"{source}:{deep}: {label}: nested deeper than {max_depth} levels: refused")
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader already refuses control characters here
        loader.max_depth, loader.max_aliases, loader.max_nodes = max_depth, max_aliases, max_nodes
        node = loader.get_single_node()
        if node is not None:
            n = _expanded_size(node, max_nodes)
            if n > max_nodes:
                raise _Refused(f"expands to more than {max_nodes} nodes through aliases: refused", node.start_mark)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"{_where(source, mark)}: {label}: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:  # belt and braces: the depth limit should have caught it
        raise ConfigError(f"{source}: {label}: nested too deeply: refused") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, line_index(node)


def read_config_text(path: str | Path, *, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """A config file's text, strictly UTF-8 (BOM dropped); errors name the file and line of a bad byte."""
    p = Path(path)
    try:
        if p.stat().st_size > max_bytes:
            raise ConfigError(f"{p}: {what} is {p.stat().st_size} bytes, more than the {max_bytes} allowed")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {p}") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a {what}") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read {what}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x}); save the {what} as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text
