"""Dangerous-SQL detector (sqlglot): DROP, TRUNCATE, DELETE/UPDATE without a real WHERE, GRANT and
privilege changes, file/command access, writes by read-only roles, and table scopes.

Parsing costs tens to hundreds of microseconds, so results are memoised per (query, read-only)
in a bounded cache: analysis is a pure function of the query text and the compiled policy.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

import sqlglot
from sqlglot import exp

from airisk.guard.detectors.scopes import Findings, ScopeChecker

# sqlglot warns with the statement text when it falls back to a raw Command; the gate parses
# untrusted SQL (which may carry credentials), so that text must not reach the logs.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_DANGEROUS_TEXT = re.compile(r"(?i)\b(?:into\s+(?:out|dump)file|xp_cmdshell|load_file\s*\(|copy\s+.*\bto\s+program|pg_read_file|lo_import|lo_export)\b")
_PRIV_TEXT = re.compile(r"(?i)^\s*(?:grant|revoke|alter\s+(?:user|role)|create\s+(?:user|role)|drop\s+(?:user|role)|set\s+role)\b")
_WRITE_TYPES = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge, exp.Command)
_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Alter, exp.Merge, exp.TruncateTable)
# Functions by effect. Server-side file access, OS commands, remote execution and native-code
# loading are never a data query, whatever statement they sit in.
EFFECT_FUNCS: dict[str, str] = {
    **dict.fromkeys(["load_file", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import",
                     "readfile", "openrowset", "opendatasource", "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir",
                     "bulk_insert"], "reads server files"),
    **dict.fromkeys(["lo_export", "writefile", "pg_file_write", "pg_file_rename", "pg_file_unlink"], "writes server files"),
    **dict.fromkeys(["xp_cmdshell", "sys_exec", "sys_eval", "sp_oacreate", "sp_oamethod", "xp_regwrite", "xp_dirtree",
                     "pg_execute_server_program", "shell"], "runs operating-system commands"),
    **dict.fromkeys(["dblink", "dblink_exec", "dblink_connect", "dblink_send_query", "dblink_open", "openquery",
                     "openxml", "utl_http.request", "http_get", "http_post", "postgres_fdw_handler"],
                    "executes SQL on or connects to another server"),
    **dict.fromkeys(["load_extension", "sqlite_load_extension"], "loads native code into the database server"),
}
# Functions whose effect needs a human: stalling or killing the server's work.
REVIEW_FUNCS: dict[str, str] = {
    **dict.fromkeys(["pg_sleep", "pg_sleep_for", "pg_sleep_until", "sleep", "benchmark"], "stalls the database (resource exhaustion)"),
    **dict.fromkeys(["pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
                     "pg_promote", "set_config"], "changes the server or other sessions"),
}
# Statements by effect that sqlglot keeps as raw commands or that are matched before parsing.
_PERSIST_TEXT = re.compile(r"(?is)^\s*create\s+(?:or\s+replace\s+)?(?:definer\s*=\s*\S+\s+)?(trigger|event|rule|procedure|function)\b")
_SERVER_TEXT = re.compile(r"(?is)^\s*(?:alter\s+system|set\s+global|shutdown|kill(?:\s+query|\s+connection)?\s+\d|"
                          r"waitfor\s+delay|do\s+\$|install\s+plugin|create\s+(?:server|foreign\s+data\s+wrapper|extension))")
EFFECT_PROCS = frozenset({"xp_cmdshell", "sp_oacreate", "sp_oamethod", "sp_configure", "xp_regwrite", "sp_addsrvrolemember",
                          "sp_addlogin", "sp_password", "sp_addextendedproc", "sp_makewebtask", "xp_dirtree"})
_LITERAL = re.compile(r"N?'((?:[^']|'')*)'")
# Literals joined by separators. The separator is required between literals: with an optional one,
# "''" could close one literal and open the next, and a failing match would backtrack exponentially.
_CONCAT_ONLY = re.compile(r"^\s*\(?\s*N?'(?:[^']|'')*'(?:\s*(?:\+|\|\||,)\s*N?'(?:[^']|'')*')*\s*\)?\s*$")
MAX_SQL_DEPTH = 4
_UNKNOWN = object()


def _value(node: exp.Expression | None, depth: int = 0):
    """The constant value of a WHERE-clause expression, or _UNKNOWN when it depends on the row.
    Three-valued enough for the question that matters: is it true for every row?"""
    if node is None or depth > 64:
        return _UNKNOWN
    if isinstance(node, exp.Where):
        return _value(node.this, depth + 1)
    if isinstance(node, exp.Paren):
        return _value(node.this, depth + 1)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        try:
            return float(node.this)
        except ValueError:
            return _UNKNOWN
    if isinstance(node, exp.Neg):
        v = _value(node.this, depth + 1)
        return -v if isinstance(v, float) else _UNKNOWN
    if isinstance(node, exp.Not):
        v = _value(node.this, depth + 1)
        return _UNKNOWN if v is _UNKNOWN or v is None else not _truthy(v)
    if isinstance(node, exp.Or):
        a, b = _value(node.left, depth + 1), _value(node.right, depth + 1)
        if (a is not _UNKNOWN and _truthy(a)) or (b is not _UNKNOWN and _truthy(b)):
            return True
        return _UNKNOWN
    if isinstance(node, exp.And):
        a, b = _value(node.left, depth + 1), _value(node.right, depth + 1)
        if a is not _UNKNOWN and b is not _UNKNOWN:
            return _truthy(a) and _truthy(b)
        if (a is not _UNKNOWN and not _truthy(a)) or (b is not _UNKNOWN and not _truthy(b)):
            return False
        return _UNKNOWN
    cmp = {exp.EQ: lambda x, y: x == y, exp.NEQ: lambda x, y: x != y, exp.GT: lambda x, y: x > y,
           exp.GTE: lambda x, y: x >= y, exp.LT: lambda x, y: x < y, exp.LTE: lambda x, y: x <= y}
    for cls, fn in cmp.items():
        if isinstance(node, cls):
            if node.left == node.right and not isinstance(node.left, exp.Literal):  # id = id: true for every (non-null) row
                return cls in (exp.EQ, exp.GTE, exp.LTE)
            a, b = _value(node.left, depth + 1), _value(node.right, depth + 1)
            if a is _UNKNOWN or b is _UNKNOWN or a is None or b is None:
                return _UNKNOWN
            try:
                return fn(a, b) if type(a) is type(b) else fn(str(a), str(b))
            except TypeError:
                return _UNKNOWN
    ops = {exp.Add: lambda x, y: x + y, exp.Sub: lambda x, y: x - y, exp.Mul: lambda x, y: x * y}
    for cls, fn in ops.items():
        if isinstance(node, cls):
            a, b = _value(node.left, depth + 1), _value(node.right, depth + 1)
            return fn(a, b) if isinstance(a, float) and isinstance(b, float) else _UNKNOWN
    if isinstance(node, exp.In) and node.expressions:
        a = _value(node.this, depth + 1)
        vals = [_value(e, depth + 1) for e in node.expressions]
        if a is not _UNKNOWN and a is not None and any(x == a for x in vals if x is not _UNKNOWN):
            return True
        return _UNKNOWN
    if isinstance(node, exp.Between):
        a, lo, hi = _value(node.this, depth + 1), _value(node.args.get("low"), depth + 1), _value(node.args.get("high"), depth + 1)
        if all(isinstance(x, float) for x in (a, lo, hi)):
            return lo <= a <= hi
        return _UNKNOWN
    if isinstance(node, exp.Like) and isinstance(node.expression, exp.Literal) and set(node.expression.this) <= {"%"}:
        return True
    if isinstance(node, exp.Is):
        a = _value(node.this, depth + 1)
        if a is not _UNKNOWN and isinstance(node.expression, exp.Null):
            return a is None
        return _UNKNOWN
    return _UNKNOWN


def _truthy(v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        return v != 0
    if isinstance(v, str):  # MySQL casts a string to the number it starts with
        m = re.match(r"\s*[-+]?\d+(?:\.\d*)?", v)
        return bool(m and float(m.group(0)) != 0)
    return False


def _is_tautology(where: exp.Expression | None) -> bool:
    """True when the WHERE clause keeps every row: absent, constant-true (2>1, NOT 0, 'a'='a'),
    or true whatever the row holds (id = id, x OR 1=1)."""
    if where is None:
        return True
    v = _value(where)
    return v is not _UNKNOWN and v is not None and _truthy(v)


MAX_STATEMENT_CHARS = 4096


def split_statements(sql: str) -> list[str]:
    """Top-level ';'-separated statements, respecting quotes, $tag$ bodies and comments."""
    out, start, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`":
            j = sql.find(c, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == c:  # doubled quote inside the literal
                j = sql.find(c, j + 2)
            i = n if j == -1 else j + 1
            continue
        if c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:i + 64])
            if m:
                j = sql.find(m.group(0), i + len(m.group(0)))
                i = n if j == -1 else j + len(m.group(0))
                continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j == -1 else j + 1
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j == -1 else j + 2
            continue
        if c == ";":
            if sql[start:i].strip():
                out.append(sql[start:i + 1])
            start = i + 1
        i += 1
    if sql[start:].strip():
        out.append(sql[start:])
    return out


def _fold_literals(text: str) -> str | None:
    """'DR' + 'OP TABLE t' (T-SQL +, standard ||, CONCAT(...)) -> 'DROP TABLE t', when the text is
    only string literals and concatenation."""
    t = text.strip()
    if t.upper().startswith("CONCAT"):
        t = t[6:]
    if not _CONCAT_ONLY.match(t):
        return None
    return "".join(m.group(1).replace("''", "'") for m in _LITERAL.finditer(t))


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

    def _analyze(self, query: str, out: Findings, read_only: bool, depth: int = 0) -> None:
        v = self.v
        out.spend(len(query))
        if depth > MAX_SQL_DEPTH:
            out.add("sql.nesting", v, "dynamic SQL nests too deeply to analyse")
            return
        if _DANGEROUS_TEXT.search(query):
            out.add("sql.file_or_command", v, "SQL reads/writes server files or runs OS commands")
        for piece in query.split(";"):
            if _PRIV_TEXT.match(piece):
                out.add("sql.grant", v, f"changes privileges: {piece.strip()[:60]}")
            m = _PERSIST_TEXT.match(piece)
            if m:
                out.add("sql.persistence", "REVIEW", f"CREATE {m.group(1).upper()} stores code the database runs later")
            if _SERVER_TEXT.match(piece):
                out.add("sql.server_change", "REVIEW" if not re.match(r"(?i)\s*shutdown", piece) else v,
                        f"changes or stops the database server: {piece.strip()[:60]}")
        prepared: dict[str, str] = {}
        # statement by statement, so the deadline is checked between parses (sqlglot itself cannot
        # be interrupted; MAX_STATEMENT_CHARS bounds one parse to a few tens of milliseconds)
        for piece in split_statements(query):
            out.tick()
            if len(piece) > MAX_STATEMENT_CHARS:
                out.add("sql.too_large", "REVIEW", f"one SQL statement is longer than {MAX_STATEMENT_CHARS} characters; "
                                                   "not parsed within the gate's time budget")
                continue
            try:
                statements = [s for s in sqlglot.parse(piece, read=self.dialect) if s is not None]
            except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as e:
                out.add("sql.parse_error", v, f"SQL does not parse ({str(e).splitlines()[0][:120]}); refusing to guess")
                continue
            except RecursionError:
                out.add("sql.too_complex", v, "SQL nests too deeply to parse; refusing to guess")
                continue
            for st in statements:
                self._statement(st, out, read_only, depth, prepared)

    def _statement(self, st: exp.Expression, out: Findings, read_only: bool, depth: int, prepared: dict) -> None:
        v = self.v
        name = type(st).__name__
        if isinstance(st, exp.Command):
            self._command(st, out, read_only, depth, prepared)
            return
        nodes = 0
        for node in st.walk():
            nodes += 1
            if nodes % 256 == 0:
                out.tick()
            if isinstance(node, exp.Drop):
                kind = (node.args.get("kind") or "object").upper()
                out.add("sql.drop", v, f"DROP {kind} {node.this.sql() if node.this else ''}".strip())
            elif isinstance(node, exp.TruncateTable):
                out.add("sql.truncate", v, "TRUNCATE removes every row")
            elif isinstance(node, exp.Delete) and _is_tautology(node.args.get("where")):
                out.add("sql.delete_all", v, "DELETE whose WHERE clause keeps every row (absent or always true) removes every row")
            elif isinstance(node, exp.Update) and _is_tautology(node.args.get("where")):
                out.add("sql.update_all", v, "UPDATE whose WHERE clause keeps every row (absent or always true) rewrites every row")
            elif isinstance(node, exp.Alter):
                if any(isinstance(a, exp.Drop) or "Drop" in type(a).__name__ for a in node.args.get("actions") or []):
                    out.add("sql.alter_drop", "REVIEW", "ALTER ... DROP removes a column or constraint")
            elif isinstance(node, exp.Copy):
                self._copy(node, st, out)
            elif isinstance(node, exp.Func):
                fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
                effect = EFFECT_FUNCS.get(fname)
                if effect:
                    out.add("sql.file_or_command", v, f"{fname}() {effect}")
                elif fname in REVIEW_FUNCS:
                    out.add("sql.server_change", "REVIEW", f"{fname}() {REVIEW_FUNCS[fname]}")
                elif fname in ("exec", "execute", "sp_executesql"):
                    self._dynamic(" ".join(e.sql() for e in node.expressions), out, read_only, depth, "EXEC(...)")
            elif isinstance(node, exp.Table) and node.name:
                full = ".".join(p for p in (node.args.get("db") and node.text("db"), node.name) if p)
                self.scopes.check_table(full, out)
            if name in ("Grant", "Revoke") and node is st:
                out.add("sql.grant", v, f"{name.upper()} changes privileges")
        writes = [n for n in st.find_all(*_WRITE_NODES)]
        into = isinstance(st, exp.Select) and st.args.get("into") is not None or any(
            isinstance(n, exp.Select) and n.args.get("into") is not None for n in st.find_all(exp.Select))
        if read_only and (writes or into or isinstance(st, _WRITE_TYPES) or name in ("TruncateTable", "Grant", "Revoke", "Copy")):
            what = type(writes[0]).__name__.upper() if writes else ("SELECT ... INTO" if into else name.upper())
            out.add("sql.read_only", v, f"{what} from a read-only role" + (" (inside a query)" if writes and writes[0] is not st else ""))

    def _copy(self, node: exp.Copy, st: exp.Expression, out: Findings) -> None:
        files = node.args.get("files") or []
        text = st.sql().upper()
        if any(isinstance(f, exp.Identifier) and f.name.upper() == "PROGRAM" for f in files) or " PROGRAM " in text:
            out.add("sql.file_or_command", self.v, "COPY ... PROGRAM runs an operating-system command on the server")
            return
        for f in files:
            if isinstance(f, exp.Literal) and f.is_string:
                direction = "reads the server file" if node.args.get("kind") else "writes the server file"
                out.add("sql.file_or_command", self.v, f"COPY {direction} {f.this[:80]}")

    def _command(self, st: exp.Command, out: Findings, read_only: bool, depth: int, prepared: dict) -> None:
        """Statements sqlglot keeps as raw commands: dynamic SQL (EXEC/EXECUTE/PREPARE), procedures."""
        verb = str(st.this).upper()
        e = st.expression
        rest = str(e.this if isinstance(e, exp.Literal) else e.sql() if isinstance(e, exp.Expression) else (e or ""))
        if verb in ("GRANT", "REVOKE"):
            return  # reported by the text rule
        if verb == "TRUNCATE":
            out.add("sql.truncate", self.v, "TRUNCATE removes every row")
        elif verb == "PREPARE":
            m = re.match(r"(?is)\s*(\w+)\s*(?:\([^)]*\))?\s*(?:FROM|AS)\s+(.*)$", rest)
            if not m:
                out.add("sql.dynamic", "REVIEW", "PREPARE the gate cannot read")
                return
            body = m.group(2).strip()
            lit = _fold_literals(body) if body.startswith(("'", "N'", "(")) else body
            if lit is None:
                out.add("sql.dynamic", "REVIEW", f"PREPARE {m.group(1)} from SQL built at run time")
                return
            prepared[m.group(1).lower()] = lit
            self._analyze(lit, out, read_only, depth + 1)  # what EXECUTE will run
        elif verb in ("EXEC", "EXECUTE", "CALL"):
            r = rest.strip()
            m = re.match(r"(?i)(\w+)\s*(?:USING\b.*|\(.*\))?\s*$", r)
            if verb != "CALL" and m and m.group(1).lower() in prepared:
                return  # analysed at PREPARE
            if r.startswith(("(", "'", "N'")):
                self._dynamic(r, out, read_only, depth, verb)
                return
            proc = re.match(r"(?i)(?:@\w+\s*=\s*)?([\w.\[\]]+)\s*(.*)$", r, re.S)
            pname = proc.group(1).split(".")[-1].strip("[]").lower() if proc else ""
            if pname in EFFECT_PROCS:
                out.add("sql.file_or_command", self.v, f"{verb} {pname} changes the server or runs OS commands")
            elif pname == "sp_executesql":
                self._dynamic(proc.group(2).split(",")[0], out, read_only, depth, "sp_executesql")
            elif verb == "EXECUTE" and m:
                out.add("sql.dynamic", "REVIEW", f"EXECUTE {m.group(1)}: a prepared statement not visible here")
        elif read_only:
            out.add("sql.read_only", self.v, f"{verb} statement from a read-only role")

    def _dynamic(self, text: str, out: Findings, read_only: bool, depth: int, what: str) -> None:
        folded = _fold_literals(text)
        if folded is None:
            out.add("sql.dynamic", "REVIEW", f"{what} runs SQL built at run time")
            return
        self._analyze(folded, out, read_only, depth + 1)
