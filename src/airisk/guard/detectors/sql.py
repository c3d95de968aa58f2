"""Dangerous-SQL detector (sqlglot): DROP, TRUNCATE, DELETE/UPDATE without a real WHERE, GRANT and
privilege changes, file/command access, writes by read-only roles, and table scopes.

Parsing costs tens to hundreds of microseconds, so results are memoised per (query, read-only)
in a bounded cache: analysis is a pure function of the query text and the compiled policy.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import sqlglot
from sqlglot import exp

from airisk.guard.detectors.scopes import Findings, ScopeChecker

_DANGEROUS_TEXT = re.compile(r"(?i)\b(?:into\s+(?:out|dump)file|xp_cmdshell|load_file\s*\(|copy\s+.*\bto\s+program|pg_read_file|lo_import|lo_export)\b")
_PRIV_TEXT = re.compile(r"(?i)^\s*(?:grant|revoke|alter\s+(?:user|role)|create\s+(?:user|role)|drop\s+(?:user|role)|set\s+role)\b")
_WRITE_TYPES = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge, exp.Command)


def _is_tautology(where: exp.Expression | None) -> bool:
    if where is None:
        return True
    cond = where.this if isinstance(where, exp.Where) else where
    if isinstance(cond, exp.Boolean):
        return bool(cond.this)
    if isinstance(cond, (exp.EQ, exp.Is)) and isinstance(cond.left, exp.Literal) and isinstance(cond.right, exp.Literal):
        return cond.left.this == cond.right.this
    if isinstance(cond, exp.EQ) and cond.left == cond.right:
        return True
    if isinstance(cond, exp.Or):
        return _is_tautology(cond.left) or _is_tautology(cond.right)
    if isinstance(cond, exp.Literal) and cond.this not in ("0", ""):
        return True
    if isinstance(cond, exp.Paren):
        return _is_tautology(cond.this)
    return False


class SQLAnalyzer:
    def __init__(self, scopes: ScopeChecker, verdict: str = "BLOCK", cache_size: int = 4096):
        self.scopes = scopes
        self.v = verdict
        self.dialect = scopes.db.dialect
        self._cache: OrderedDict[tuple[str, bool], list[tuple[str, str, str]]] = OrderedDict()
        self.cache_size = cache_size

    def analyze(self, query: str, out: Findings, *, read_only: bool = False) -> None:
        key = (query, read_only)
        hit = self._cache.get(key)
        if hit is None:
            local = Findings(deadline=out.deadline)
            self._analyze(query, local, read_only)
            hit = [(f.rule_id, f.verdict, f.reason) for f in local.items]
            self._cache[key] = hit
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        for r, v, why in hit:
            out.add(r, v, why)

    def _analyze(self, query: str, out: Findings, read_only: bool) -> None:
        v = self.v
        if _DANGEROUS_TEXT.search(query):
            out.add("sql.file_or_command", v, "SQL reads/writes server files or runs OS commands")
        for piece in query.split(";"):
            if _PRIV_TEXT.match(piece):
                out.add("sql.grant", v, f"changes privileges: {piece.strip()[:60]}")
        try:
            statements = [s for s in sqlglot.parse(query, read=self.dialect) if s is not None]
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as e:
            out.add("sql.parse_error", v, f"SQL does not parse ({str(e).splitlines()[0][:120]}); refusing to guess")
            return
        for st in statements:
            out.tick()
            name = type(st).__name__
            if isinstance(st, exp.Drop):
                kind = (st.args.get("kind") or "object").upper()
                out.add("sql.drop", v, f"DROP {kind} {st.this.sql() if st.this else ''}".strip())
            elif name == "TruncateTable" or (isinstance(st, exp.Command) and str(st.this).upper() == "TRUNCATE"):
                out.add("sql.truncate", v, "TRUNCATE removes every row")
            elif isinstance(st, exp.Delete) and _is_tautology(st.args.get("where")):
                out.add("sql.delete_all", v, "DELETE without a (meaningful) WHERE clause removes every row")
            elif isinstance(st, exp.Update) and _is_tautology(st.args.get("where")):
                out.add("sql.update_all", v, "UPDATE without a (meaningful) WHERE clause rewrites every row")
            elif isinstance(st, exp.Alter):
                if any(isinstance(a, exp.Drop) or "Drop" in type(a).__name__ for a in st.args.get("actions") or []):
                    out.add("sql.alter_drop", "REVIEW", "ALTER ... DROP removes a column or constraint")
            elif isinstance(st, exp.Command) and str(st.this).upper() in ("GRANT", "REVOKE"):
                pass  # reported by the text rule above
            elif name in ("Grant", "Revoke"):
                out.add("sql.grant", v, f"{name.upper()} changes privileges")
            if read_only and (isinstance(st, _WRITE_TYPES) or name in ("TruncateTable", "Grant", "Revoke")):
                out.add("sql.read_only", v, f"{name.upper()} statement from a read-only role")
            for t in st.find_all(exp.Table):
                if t.name:
                    full = ".".join(p for p in (t.args.get("db") and t.text("db"), t.name) if p)
                    self.scopes.check_table(full, out)
