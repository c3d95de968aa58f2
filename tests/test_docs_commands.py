"""Every ``airisk ...`` command shown in README.md and docs/*.md names real commands and options.

Commands are taken from fenced code blocks and inline code spans; each is resolved against the CLI's
command tree: every sub-command must exist, every ``--option`` must belong to the command it is
given to, and no command gets more positional arguments than it declares. Values are not
checked (docs use placeholders such as RUN or ``...``).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from airisk.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\s*$")
INLINE = re.compile(r"`((?:\.venv/bin/)?airisk [^`]+)`")
SKIP_LANGS = {"python", "py", "yaml", "yml", "json", "jsonl", "toml", "jinja", "html", "text", "csv"}
ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _commands_in(path: Path) -> list[tuple[int, str]]:
    """(line number, command text) of every airisk invocation in a Markdown file."""
    out: list[tuple[int, str]] = []
    lang, in_block, pending, start = "", False, "", 0
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line.strip())
        if m:
            in_block, lang = (not in_block, m.group(1).lower()) if not in_block else (False, "")
            continue
        if in_block:
            if lang in SKIP_LANGS:
                continue
            text = line.strip()
            if text.startswith("$ "):
                text = text[2:]
            if pending:
                text, start = pending + " " + text, start
            else:
                start = no
            if text.endswith("\\"):
                pending = text[:-1]
                continue
            pending = ""
            out.extend((start, seg) for seg in _segments(text))
        else:
            out.extend((no, seg) for m in INLINE.finditer(line) for seg in _segments(m.group(1)))
    return out


def _segments(text: str) -> list[str]:
    """Shell segments (split on &&, ||, ;, |) that invoke airisk, without env assignments."""
    text = text.split(" #", 1)[0]
    found = []
    for seg in re.split(r"&&|\|\||;|\||&| / ", text):
        words = seg.strip().split()
        while words and ENV_ASSIGN.match(words[0]):
            words.pop(0)
        if words and (words[0] == "airisk" or words[0].endswith("/airisk")):
            found.append(" ".join(words))
    return found


def _params(cmd):
    return [p for p in cmd.params if p.param_type_name == "option"], \
           [p for p in cmd.params if p.param_type_name == "argument"]


def check(command: str) -> str | None:
    """None if the command resolves; otherwise what is wrong with it."""
    try:
        words = shlex.split(command)[1:]
    except ValueError as e:
        return f"cannot split: {e}"
    # Synopsis notation: "[--limit N]" is the option --limit with a value.
    tokens = [w.strip("[]") for w in words if w.strip("[]")]
    cmd, path, positionals, i = typer.main.get_command(app), ["airisk"], 0, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            positionals += len(tokens) - i - 1
            break
        if tok.startswith("-") and tok != "-" and not re.fullmatch(r"-\d+(\.\d+)?", tok):
            options = {n: o for o in _params(cmd)[0] for n in (*o.opts, *o.secondary_opts)}
            name = tok.split("=", 1)[0]
            if name not in options and name != "--help":
                return f"unknown option {name} for '{' '.join(path)}' (known: {', '.join(sorted(options))})"
            opt = options.get(name)
            flag = opt is None or getattr(opt, "is_flag", False) or name in opt.secondary_opts
            i += 1 if flag or "=" in tok else 2
            continue
        if hasattr(cmd, "commands"):  # a group: this word names a sub-command
            if tok not in cmd.commands:
                return f"unknown command '{tok}' under '{' '.join(path)}' (known: {', '.join(sorted(cmd.commands))})"
            cmd, path, positionals = cmd.commands[tok], [*path, tok], 0
        else:
            positionals += 1
        i += 1
    arguments = _params(cmd)[1]
    if not any(a.nargs == -1 for a in arguments):
        limit = sum(max(a.nargs, 1) for a in arguments)
        if positionals > limit:
            return f"'{' '.join(path)}' takes {limit} argument(s), got {positionals}"
    return None


ALL = [(p.relative_to(ROOT).as_posix(), no, c) for p in DOCS for no, c in _commands_in(p)]


def test_docs_show_commands():
    # The docs do show commands: an extractor that finds none would make the test below vacuous.
    assert len(ALL) > 30, ALL


@pytest.mark.parametrize("where,line,command", ALL, ids=[f"{w}:{n}" for w, n, _ in ALL])
def test_documented_command_parses(where, line, command):
    problem = check(command)
    assert problem is None, f"{where}:{line}: {command}\n  {problem}"


@pytest.mark.parametrize("command,needle", [
    ("airisk runz list", "unknown command 'runz'"),
    ("airisk run --datasett x", "unknown option --datasett"),
    ("airisk agent run builtin --agent careful --stor x", "unknown option --stor"),
    ("airisk hazards crosswalk a b", "takes 1 argument"),
])
def test_checker_rejects_bad_commands(command, needle):
    assert needle in (check(command) or "")
