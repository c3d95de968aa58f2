"""Dangerous-shell detector: lexes a command or script and flags destructive or hostile operations.

Obfuscation is undone as far as a lexer can: line continuations, ``$IFS``, ANSI-C ``$'\\x..'``
strings, quote splitting (``r''m``), simple variable indirection (``a=rm; $a -rf /``), ``eval``,
``sh -c``, command substitution, process substitution and ``base64 -d | sh`` (the payload is decoded
and analysed too). Everything found is reported (rule id, verdict, reason) into a ``Findings``.
The detector never executes anything.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
import shlex

from airisk.guard.detectors.scopes import Findings, ScopeChecker

MAX_DEPTH = 6

_META = re.compile(r"""[\s\S]*?[;&|<>(){}$`\\'"\n#]""")
_META_CHARS = frozenset(";&|<>(){}$`\\'\"\n#")
_CONT = re.compile(r"\\\r?\n")
_IFS = re.compile(r"\$\{IFS\}|\$IFS(?:\$\d)?")
_ANSI_C = re.compile(r"\$'((?:[^'\\]|\\.)*)'")
_ASSIGN = re.compile(r"^\s*(?:(?:local|export|readonly|declare|typeset)\s+(?:-\w+\s+)*)?([A-Za-z_]\w*)=(.*)$")
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")
_FORK_BOMB = re.compile(r"([\w:.@%+-]{1,64})\s{0,8}\(\)\s{0,8}\{[^}]{0,200}?\1\s{0,8}\|\s{0,8}\1\s{0,8}&[^}]{0,200}\}\s{0,8};?\s{0,8}\1")
MAX_SUBSTITUTIONS = 200
MAX_COMMANDS = 5000
_DEV_TCP = re.compile(r"/dev/(?:tcp|udp)/")
_URL_IN_TEXT = re.compile(r"(?:https?|ftp)://[^\s'\"<>`)]+")
_SECRET_VAR = re.compile(r"\$\{?(?:[A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY)[A-Z0-9_]*)\}?")

SHELLS = frozenset("sh bash zsh dash ksh fish ash mksh csh tcsh".split())
INTERPRETERS = SHELLS | frozenset("python python2 python3 perl ruby node nodejs php lua source .".split())
FETCHERS = frozenset("curl wget fetch aria2c lwp-download http https".split())
SENDERS = frozenset("curl wget nc ncat netcat socat telnet ssh scp sftp rsync ftp mail mailx sendmail mutt http https".split())
RAW_SOCKET = frozenset("nc ncat netcat socat telnet".split())
DECODERS = frozenset("base64 base32 xxd openssl uudecode rev gunzip zcat gzip".split())
PREFIXES = frozenset("sudo doas nohup nice ionice time timeout stdbuf command builtin exec env xargs busybox unbuffer".split())
NO_PATH_CMDS = frozenset("echo printf test [ [[ mkdir cd pushd popd export local declare alias true false read sleep which type".split())
WRITE_CMDS = frozenset("rm rmdir unlink shred truncate touch tee install".split())
LOG_UNITS = re.compile(r"^(?:auditd|rsyslog|syslog|syslog-ng|systemd-journald|journald|auditbeat|filebeat|falco|osqueryd|wazuh-agent|ossec|splunkd|auditd\.service|rsyslog\.service|systemd-journald\.service|systemd-journald\.socket)$")
CRITICAL_PROCS = frozenset("sshd systemd init auditd rsyslogd journald systemd-journald dockerd containerd kubelet".split())
ENV_DUMP = frozenset("env printenv set".split())
READ_DEV = re.compile(r"^/dev/(?:sd[a-z]|nvme\d|hd[a-z]|vd[a-z]|xvd[a-z]|mmcblk\d|disk\d|md\d|dm-\d|mapper/)")


def _decode_ansi_c(m: re.Match) -> str:
    s = m.group(1)
    try:
        out = s.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, UnicodeEncodeError):
        out = s
    return "'" + out.replace("'", "'\\''") + "'"


def _extract_substitutions(text: str) -> tuple[str, list[str]]:
    """Replace $(...), `...` and <(...) by placeholders; return the inner scripts."""
    inner: list[str] = []
    out: list[str] = []
    i, n = 0, len(text)
    in_single = False
    while i < n:
        c = text[i]
        if c == "'" and not in_single:
            # single quotes are literal in shell, but only outside double quotes; good enough here
            j = text.find("'", i + 1)
            if j == -1:
                out.append(text[i:])
                break
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if (c == "$" or c == "<" or c == ">") and i + 1 < n and text[i + 1] == "(" and not (c == "$" and text[i + 2:i + 3] == "("):
            depth, j = 1, i + 2
            while j < n and depth:
                if text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            inner.append(text[i + 2:j - 1])
            out.append(f" __SUBST{len(inner) - 1}__ " if c != "$" else f"__SUBST{len(inner) - 1}__")
            i = j
            continue
        if c == "`":
            j = text.find("`", i + 1)
            if j == -1:
                j = n
            inner.append(text[i + 1:j])
            out.append(f"__SUBST{len(inner) - 1}__")
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out), inner


def _collect_env(lines: list[str], env: dict[str, str]) -> None:
    for line in lines:
        for part in re.split(r"[;&]", line):
            m = _ASSIGN.match(part)
            if not m:
                continue
            name, raw = m.group(1), m.group(2).strip()
            try:
                toks = shlex.split(raw, comments=True) if raw else [""]
            except ValueError:
                toks = [raw.strip("'\"")]
            val = toks[0] if toks else ""
            if re.search(r"\$(?:\d|@|\*|\{\d)", val):  # function parameters: unknown here
                continue
            env[name] = val


def _expand(text: str, env: dict[str, str], home: str) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name in env:
            return env[name]
        if name == "HOME":
            return home
        return m.group(0)

    for _ in range(4):
        new = _VAR.sub(sub, text)
        if new == text:
            break
        text = new
    return text


def _tokenize(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lex.whitespace_split = True
    lex.commenters = "#"
    return list(lex)


_OPS = frozenset([";", "&&", "||", "&", "(", ")", ";;", "|", "|&", "\n"])
_REDIR = frozenset([">", ">>", "<", "<<", "<<<", ">&", "&>", "&>>", ">|", "<>", "<&"])
_KEYWORDS = frozenset("if then else elif fi for while until do done case esac in function select ! { } [[ ]] time coproc".split())


# Windows cmd / PowerShell: matched on the raw text (the POSIX lexer does not apply).
_WIN_QUICK = re.compile(r"(?i)vssadmin|wevtutil|clear-eventlog|set-mppreference|format|remove-item|\brd\b|rmdir|\bdel\b|"
                        r"bcdedit|cipher|\biex\b|invoke-expression|powershell|pwsh|\bri\b")
_WIN_RULES: list[tuple[str, str, re.Pattern]] = [
    ("shell.download_exec", "PowerShell downloads code and runs it (iex ... DownloadString / iwr)",
     re.compile(r"(?i)\b(?:iex|invoke-expression)\b[^\n]{0,400}?(?:downloadstring|downloadfile|invoke-webrequest|\biwr\b|"
                r"invoke-restmethod|\birm\b|net\.webclient)|(?:downloadstring|invoke-webrequest|\biwr\b|invoke-restmethod|\birm\b)"
                r"[^\n]{0,400}?\|\s*(?:iex|invoke-expression)\b")),
    ("shell.disk_wipe", "deletes volume shadow copies (ransomware pattern)", re.compile(r"(?i)\bvssadmin(?:\.exe)?\s+delete\s+shadows")),
    ("shell.disk_wipe", "formats a drive", re.compile(r"(?i)(?:^|[\s;&|])format(?:\.com)?\s+[a-z]:|\bformat-volume\b")),
    ("shell.disk_wipe", "cipher /w wipes free space", re.compile(r"(?i)\bcipher(?:\.exe)?\s+/w:")),
    ("shell.recursive_delete", "recursive delete of a drive root or the user profile",
     re.compile(r"(?i)(?:\b(?:rd|rmdir)\s+(?:/[sq]\s+)*/s\b[^\n]{0,40}?|\bdel\s+(?:/[a-z]\s+)*/s\b[^\n]{0,40}?|"
                r"\b(?:remove-item|\bri\b|rm)\b(?=[^\n]{0,200}-recurse)[^\n]{0,200}?)"
                r"(?:[\"']?\b[a-z]:\\?\*?[\"']?(?=\s|$|;)|\$env:(?:userprofile|systemroot|windir)|%(?:userprofile|systemroot|windir)%)")),
    ("shell.disable_logging", "clears Windows event logs", re.compile(r"(?i)\bwevtutil(?:\.exe)?\s+(?:cl|clear-log)\b|\bclear-eventlog\b")),
    ("shell.disable_security", "disables Microsoft Defender protection",
     re.compile(r"(?i)set-mppreference[^\n]{0,200}-disable\w*\s+(?:\$true|1)|add-mppreference[^\n]{0,200}-exclusionpath\s+['\"]?[a-z]:\\?['\"]?(?:\s|$)")),
    ("shell.disable_security", "disables boot recovery", re.compile(r"(?i)\bbcdedit\b[^\n]{0,200}(?:recoveryenabled\s+no|bootstatuspolicy\s+ignoreallfailures)")),
]
_PS_ENC = re.compile(r"(?i)\b(?:powershell|pwsh)(?:\.exe)?\b[^\n]{0,200}?\s-(?:e|ec|enc|encodedcommand)\s+([A-Za-z0-9+/=]{8,})")


class ShellAnalyzer:
    """Analyses shell text against the policy's scopes; stateless apart from the scope checker."""

    def __init__(self, scopes: ScopeChecker, verdict: str = "BLOCK"):
        self.scopes = scopes
        self.v = verdict

    # -- entry point --
    def analyze(self, text: str, out: Findings, *, cwd: str | None = None, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            out.add("shell.nesting", self.v, "command nests eval/sh -c/decoding too deeply to analyse")
            return
        out.tick()
        if _WIN_QUICK.search(text):
            self._windows(text, out, cwd, depth)
        if not any(c in _META_CHARS for c in text):
            # No quoting, expansion or operators: str.split() is exactly what the shell would do.
            argv = self._prep(text.split(), out)
            if argv:
                self._command(argv, [], out, cwd, depth, pipeline=[argv], script_flags=set())
            return
        self._script(text, out, cwd, depth)

    def _windows(self, text: str, out: Findings, cwd, depth: int) -> None:
        for rule, why, rx in _WIN_RULES:
            if rx.search(text):
                out.add(rule, self.v, why)
        for m in _PS_ENC.finditer(text):
            out.add("shell.obfuscated_exec", self.v, "PowerShell -EncodedCommand (payload decoded and analysed)")
            try:
                decoded = base64.b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4)).decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                continue
            self.analyze(decoded, out, cwd=cwd, depth=depth + 1)

    def _script(self, text: str, out: Findings, cwd: str | None, depth: int) -> None:
        raw = text
        if "()" in raw and _FORK_BOMB.search(raw.replace("\n", " ")):
            out.add("shell.fork_bomb", self.v, "fork bomb (a function that recursively pipes into itself in the background)")
        text = _CONT.sub("", text)
        text = _IFS.sub(" ", text)
        text = _ANSI_C.sub(_decode_ansi_c, text)
        if _DEV_TCP.search(text):
            out.add("shell.reverse_shell", self.v, "uses /dev/tcp or /dev/udp (typical reverse shell or covert channel)")
        text, inner = _extract_substitutions(text)
        if len(inner) > MAX_SUBSTITUTIONS:
            out.add("shell.too_complex", self.v, f"more than {MAX_SUBSTITUTIONS} command substitutions; not analysed")
            return
        for idx, code in enumerate(inner):
            # $(echo X) / $(printf X) evaluates to X: substitute it, as the shell would
            m = re.fullmatch(r"\s*(?:echo|printf)\s+(-[neE]+\s+)?([^|;&<>`\n]*?)\s*", code)
            if m and "__SUBST" not in m.group(2) and "$" not in m.group(2):
                try:
                    literal = " ".join(shlex.split(m.group(2)))
                except ValueError:
                    continue
                text = text.replace(f"__SUBST{idx}__", literal)
        env: dict[str, str] = {}
        lines = text.split("\n")
        _collect_env(lines, env)
        # substitutions whose output is fetched from the network / is an environment dump
        subst_info: list[set[str]] = []
        for code in inner:
            sub_out = Findings(deadline=out.deadline)
            self.analyze(_expand(code, env, self.scopes.home), sub_out, cwd=cwd, depth=depth + 1)
            for f in sub_out.items:
                out.add(f.rule_id, f.verdict, f.reason)
            subst_info.append(self._flags(code))
        script_flags: set[str] = set()
        for fl in subst_info:
            script_flags |= fl
        parsed: list[list[tuple[list[str], list[tuple[str, str]]]]] = []
        for line in lines:
            if not line.strip():
                continue
            out.tick()
            line = _expand(line, env, self.scopes.home)
            try:
                toks = _tokenize(line)
            except ValueError as e:  # unbalanced quotes: cannot know what would run
                out.add("shell.parse_error", self.v, f"shell text cannot be parsed ({e}); refusing to guess")
                continue
            parsed.extend(self._pipelines(toks))
            if len(parsed) > MAX_COMMANDS:
                out.add("shell.too_complex", self.v, f"more than {MAX_COMMANDS} commands; not analysed")
                return
        for pipeline in parsed:
            for argv, _ in pipeline:
                if argv:
                    script_flags |= self._flags_argv(argv)
        before = len(out.items)
        if script_flags & {"fetch", "send"}:
            # URLs written anywhere in a script that talks to the network count as contacted
            for u in set(_URL_IN_TEXT.findall(_expand(text, env, self.scopes.home))):
                self.scopes.check_url(u, out, from_code=True, what="script")
        downloaded = self._downloads(parsed, cwd)
        cur = cwd
        for pipeline in parsed:
            if len(pipeline) == 1:
                cmd = self._strip(pipeline[0][0])
                if cmd and cmd[0] in ("cd", "pushd") and len(cmd) > 1 and not cmd[1].startswith("-"):
                    cur = self.scopes.norm(cmd[1], cur)  # later relative paths resolve against it
                    continue
            if downloaded:
                for argv, _ in pipeline:
                    cmd = self._strip(argv)
                    if not cmd:
                        continue
                    run = [cmd[0]] if cmd[0].startswith(("./", "/", "~")) else []
                    if posixpath.basename(cmd[0]) in INTERPRETERS:
                        run = [a for a in cmd[1:] if not a.startswith("-")][:1]
                    if any(self.scopes.norm(r, cur) in downloaded for r in run):
                        out.add("shell.download_exec", self.v, f"runs a file it just downloaded ({run[0]})")
            self._pipeline(pipeline, out, cur, depth, inner, subst_info, script_flags)
        if "send" in script_flags and any(f.rule_id.startswith("scope.fs.read") for f in out.items[before:]):
            out.add("shell.exfiltration", self.v, "script reads a protected or system file and sends data over the network")

    # -- structure --
    @staticmethod
    def _pipelines(toks: list[str]):
        pipelines, cur, argv, redirs = [], [], [], []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t in ("|", "|&"):
                cur.append((argv, redirs))
                argv, redirs = [], []
            elif t in _OPS:
                cur.append((argv, redirs))
                pipelines.append(cur)
                cur, argv, redirs = [], [], []
            elif t in _REDIR or (t.endswith((">", ">>")) and set(t) <= set("0123456789&>")):
                target = toks[i + 1] if i + 1 < len(toks) else ""
                redirs.append((t, target))
                i += 1
            else:
                if argv and t.isdigit() and i + 1 < len(toks) and toks[i + 1] in _REDIR:
                    pass  # fd number before a redirection
                else:
                    argv.append(t)
            i += 1
        cur.append((argv, redirs))
        pipelines.append(cur)
        return [[(a, r) for a, r in p if a or r] for p in pipelines if any(a or r for a, r in p)]

    @staticmethod
    def _strip(argv: list[str]) -> list[str]:
        """Drop keywords, assignments and wrappers (sudo, env, nohup, xargs ...) to reach the command."""
        i = 0
        while i < len(argv):
            a = argv[i]
            base = posixpath.basename(a)
            if a in _KEYWORDS:
                i += 1
            elif _ASSIGN.match(a) and "=" in a and not a.startswith("-"):
                i += 1
            elif base in PREFIXES:
                i += 1
                while i < len(argv) and (argv[i].startswith("-") or (base == "timeout" and argv[i][:1].isdigit())
                                         or (base in ("sudo", "doas") and i > 0 and argv[i - 1] in ("-u", "-g"))):
                    i += 1
            else:
                break
        if i >= len(argv) and argv and posixpath.basename(argv[-1]) in PREFIXES:
            return argv[-1:]  # a bare "env" / "time" is itself the command
        return argv[i:]

    def _prep(self, argv: list[str], out: Findings) -> list[str]:
        """The command proper, noting privilege escalation (sudo/doas/su) on the way."""
        for a in argv[:3]:
            if posixpath.basename(a) in ("sudo", "doas", "su", "pkexec"):
                out.add("shell.privileged", "REVIEW", f"runs with elevated privileges ({posixpath.basename(a)})")
                break
        return self._strip(argv)

    def _flags_argv(self, argv: list[str]) -> set[str]:
        flags = set()
        cmd = self._strip(argv)
        if not cmd:
            return flags
        name = posixpath.basename(cmd[0])
        if name in FETCHERS:
            flags.add("fetch")
        if name in SENDERS:
            flags.add("send")
        if name in ENV_DUMP and len(cmd) == 1 or (name == "cat" and any("environ" in a for a in cmd)):
            flags.add("env")
        if name == "mkfifo":
            flags.add("fifo")
        if name in DECODERS and any(a in ("-d", "--decode", "-D", "-r") or a.startswith("-d") for a in cmd[1:]):
            flags.add("decode")
        return flags

    def _downloads(self, parsed, cwd) -> set[str]:
        """Files written by curl/wget in this script (normalised paths)."""
        out: set[str] = set()
        for pipeline in parsed:
            for argv, redirs in pipeline:
                cmd = self._strip(argv)
                if not cmd or posixpath.basename(cmd[0]) not in FETCHERS:
                    continue
                for i, a in enumerate(cmd):
                    nxt = cmd[i + 1] if i + 1 < len(cmd) else None
                    if a in ("-o", "-O", "--output", "--output-document") and nxt and nxt != "-":
                        out.add(self.scopes.norm(nxt, cwd))
                    elif a.startswith(("--output=", "--output-document=")):
                        out.add(self.scopes.norm(a.split("=", 1)[1], cwd))
                for op, target in redirs:
                    if op in (">", ">>") and target:
                        out.add(self.scopes.norm(target, cwd))
        return out

    def _flags(self, code: str) -> set[str]:
        flags = set()
        try:
            for p in self._pipelines(_tokenize(_IFS.sub(" ", code))):
                for argv, _ in p:
                    flags |= self._flags_argv(argv)
        except ValueError:
            pass
        if "import urllib" in code or "requests." in code:
            flags.add("fetch")
        return flags

    def _pipeline(self, pipeline, out: Findings, cwd, depth, inner, subst_info, script_flags) -> None:
        names = []
        for argv, _ in pipeline:
            cmd = self._strip(argv)
            names.append(posixpath.basename(cmd[0]) if cmd else "")
        stages = [self._strip(a) for a, _ in pipeline]
        # piping into an interpreter
        for k, (name, cmd) in enumerate(zip(names, stages)):
            if k == 0 or name not in INTERPRETERS:
                continue
            reads_stdin = len(cmd) == 1 or all(a.startswith("-") for a in cmd[1:]) or "-" in cmd[1:]
            if not reads_stdin:
                continue
            before = set(names[:k])
            if before & FETCHERS or any("fetch" in self._flags_argv(a) for a in stages[:k]):
                out.add("shell.download_exec", self.v, f"downloads code and pipes it into {name} (curl|sh pattern)")
            if before & DECODERS:
                out.add("shell.obfuscated_exec", self.v, f"decodes an encoded payload and pipes it into {name}")
                self._decode_payloads(stages[:k], out, cwd, depth)
            if before & RAW_SOCKET:
                out.add("shell.reverse_shell", self.v, f"pipes a network connection into {name}")
        # environment / secret dumps sent over the network
        if any(n in SENDERS for n in names):
            if any(n in ENV_DUMP and len(s) == 1 for n, s in zip(names, stages)):
                out.add("shell.exfiltration", self.v, "sends an environment dump over the network")
        for argv, redirs in pipeline:
            cmd = self._prep(argv, out)
            self._redirs(redirs, out, cwd)
            if cmd:
                self._command(cmd, redirs, out, cwd, depth, pipeline=stages, script_flags=script_flags,
                              inner=inner, subst_info=subst_info)
            elif argv:  # assignments only
                self._assignments(argv, out)

    def _decode_payloads(self, stages, out: Findings, cwd, depth) -> None:
        for cmd in stages:
            for a in cmd[1:]:
                if len(a) >= 8 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", a):
                    try:
                        decoded = base64.b64decode(a + "=" * (-len(a) % 4), validate=False).decode("utf-8")
                    except (binascii.Error, UnicodeDecodeError, ValueError):
                        continue
                    self.analyze(decoded, out, cwd=cwd, depth=depth + 1)

    def _redirs(self, redirs, out: Findings, cwd) -> None:
        for op, target in redirs:
            if not target or target.startswith("&") or target.isdigit():
                continue
            if op.startswith(">") or op.endswith((">", ">>")) or op in ("&>", "&>>", "<>"):
                if READ_DEV.match(target):
                    out.add("shell.disk_wipe", self.v, f"writes directly to block device {target}")
                elif re.search(r"_history$|/\.\w*history$", target):
                    out.add("shell.history_clear", self.v, f"overwrites shell history {target}")
                elif "/var/log" in self.scopes.norm(target, cwd):
                    out.add("shell.log_tamper", self.v, f"overwrites log file {target}")
                else:
                    self.scopes.check_write(target, out, cwd=cwd, what="redirect")
            elif op in ("<",):
                self.scopes.check_read(target, out, cwd=cwd, what="read")

    def _assignments(self, argv, out: Findings) -> None:
        for a in argv:
            m = _ASSIGN.match(a)
            if not m:
                continue
            name, val = m.group(1), m.group(2)
            if name in ("HISTFILE",) and val in ("/dev/null", "") or name in ("HISTSIZE", "HISTFILESIZE") and val == "0":
                out.add("shell.history_clear", self.v, f"disables shell history ({name}={val})")
            if name == "LD_PRELOAD":
                out.add("shell.ld_preload", self.v, "sets LD_PRELOAD (library injection)")

    # -- per command --
    def _command(self, cmd, redirs, out: Findings, cwd, depth, *, pipeline, script_flags, inner=(), subst_info=()):
        out.tick()
        name = posixpath.basename(cmd[0])
        args = cmd[1:]
        flags = [a for a in args if a.startswith("-")]
        operands = [a for a in args if not a.startswith("-")]
        short = "".join(a[1:] for a in flags if not a.startswith("--"))
        v = self.v

        # placeholders of command substitutions: fetched code executed?
        for a in args:
            for m in re.finditer(r"__SUBST(\d+)__", a):
                idx = int(m.group(1))
                info = subst_info[idx] if idx < len(subst_info) else set()
                if name in INTERPRETERS and "fetch" in info:
                    out.add("shell.download_exec", v, f"runs code fetched from the network with {name}")
                if name in SENDERS and "env" in info:
                    out.add("shell.exfiltration", v, "sends an environment dump over the network")
                if name == "eval" and "fetch" in info:
                    out.add("shell.download_exec", v, "evals code fetched from the network")
                if (name in INTERPRETERS or name == "eval") and "decode" in info:
                    out.add("shell.obfuscated_exec", v, f"runs decoded data with {name}")
                    if idx < len(inner):
                        try:
                            stages = [self._strip(a) for p in self._pipelines(_tokenize(inner[idx])) for a, _ in p]
                            self._decode_payloads(stages, out, cwd, depth)
                        except ValueError:
                            pass

        if name == "eval":
            self.analyze(" ".join(args), out, cwd=cwd, depth=depth + 1)
            return
        if name in SHELLS and "-c" in args:
            i = args.index("-c")
            if i + 1 < len(args):
                self.analyze(args[i + 1], out, cwd=cwd, depth=depth + 1)
            if "-i" in args:
                out.add("shell.interactive", "REVIEW", "starts an interactive shell")
            return
        if name in SHELLS and "-i" in args and any(op in (">&", "&>") or "/dev/tcp" in t for op, t in redirs):
            out.add("shell.reverse_shell", v, "interactive shell with its I/O redirected (reverse shell)")
        if name.startswith("python") and "-c" in args:
            i = args.index("-c")
            if i + 1 < len(args) and self.python is not None:
                self.python.analyze(args[i + 1], out, cwd=cwd, depth=depth + 1)
            return
        if name in ("perl", "ruby", "php", "node") and ("-e" in args or "-r" in args):
            code = " ".join(args)
            for m in re.finditer(r"(?:system|exec|popen|spawn|execSync|shell_exec|passthru)\s*\(?\s*[\"']([^\"']+)[\"']|`([^`]+)`", code):
                self.analyze(m.group(1) or m.group(2), out, cwd=cwd, depth=depth + 1)
            if re.search(r"socket|Socket|TCPSocket|fsockopen|net\.connect", code) and re.search(r"exec|system|spawn|/bin/sh|popen", code):
                out.add("shell.reverse_shell", v, f"{name} one-liner opens a socket and runs a shell")
        if name in ("source", ".") and any(a.startswith("__SUBST") for a in args):
            pass  # handled by the placeholder check above

        # --- destructive filesystem operations ---
        if name in ("rm", "rmdir", "unlink"):
            recursive = "r" in short or "R" in short or "--recursive" in flags or name == "rmdir"
            if "--no-preserve-root" in flags:
                out.add("shell.recursive_delete", v, "rm --no-preserve-root")
            for t in operands:
                if recursive and self.scopes.is_critical(t, cwd):
                    out.add("shell.recursive_delete", v, f"recursive delete of {self.scopes.norm(t, cwd)}")
                elif re.search(r"_history$|/\.\w*history$", t):
                    out.add("shell.history_clear", v, f"deletes shell history {t}")
                elif "/var/log" in self.scopes.norm(t, cwd):
                    out.add("shell.log_tamper", v, f"deletes log file {t}")
                else:
                    self.scopes.check_write(t, out, cwd=cwd, what="delete")
            return
        if name == "find":
            if "-delete" in args or ("-exec" in args and any(posixpath.basename(a) in ("rm", "shred") for a in args)):
                filtered = any(a in ("-name", "-iname", "-path", "-ipath", "-regex", "-newer", "-mtime", "-mmin", "-size")
                               for a in args)
                for t in operands[:1]:
                    p = self.scopes.norm(t, cwd)
                    inside_cwd = p.startswith((cwd or self.scopes.cwd).rstrip("/") + "/") or p == (cwd or self.scopes.cwd)
                    if self.scopes.is_critical(t, cwd) and not (filtered and inside_cwd):
                        out.add("shell.recursive_delete", v, f"find ... -delete over {self.scopes.norm(t, cwd)}")
                    else:
                        self.scopes.check_write(t, out, cwd=cwd, what="delete")
            for t in operands[:1]:
                self.scopes.check_read(t, out, cwd=cwd, what="search")
            return
        if name in ("mkfs", "wipefs", "fdisk", "sfdisk", "parted", "sgdisk", "mkswap") or name.startswith("mkfs."):
            out.add("shell.disk_wipe", v, f"{name} rewrites a disk or partition table")
            return
        if name == "shred":
            for t in operands:
                if READ_DEV.match(t) or self.scopes.is_critical(t, cwd):
                    out.add("shell.disk_wipe", v, f"shred of {t}")
                elif re.search(r"history$", t):
                    out.add("shell.history_clear", v, f"shreds shell history {t}")
                elif "/var/log" in self.scopes.norm(t, cwd):
                    out.add("shell.log_tamper", v, f"shreds log file {t}")
                else:
                    self.scopes.check_write(t, out, cwd=cwd, what="shred")
            return
        if name == "dd":
            for a in args:
                if a.startswith("of="):
                    t = a[3:]
                    if READ_DEV.match(t):
                        out.add("shell.disk_wipe", v, f"dd writes to block device {t}")
                    else:
                        self.scopes.check_write(t, out, cwd=cwd, what="dd")
                elif a.startswith("if="):
                    t = a[3:]
                    if not t.startswith("/dev/"):
                        self.scopes.check_read(t, out, cwd=cwd)
            return
        if name in ("chmod", "chown", "chgrp", "setfacl"):
            recursive = "R" in short or "--recursive" in flags
            mode = operands[0] if operands else ""
            targets = operands[1:]
            for t in targets:
                crit = self.scopes.is_critical(t, cwd)
                if recursive and crit:
                    out.add("shell.chmod_root", v, f"{name} -R on {self.scopes.norm(t, cwd)}")
                elif name == "chmod" and re.fullmatch(r"0?[0-7]?777|a\+rwx|o\+w|ugo\+rwx|\+rwx", mode) and crit:
                    out.add("shell.chmod_root", v, f"chmod {mode} on {self.scopes.norm(t, cwd)}")
                else:
                    self.scopes.check_write(t, out, cwd=cwd, what=name)
            if name == "chmod" and re.fullmatch(r"[ugo]*\+s|[24][0-7]{3}", mode):
                out.add("shell.setuid", "REVIEW", f"chmod {mode} sets the setuid/setgid bit")
            return

        # --- reverse shells and raw sockets ---
        if name in RAW_SOCKET:
            if any(f in ("-e", "-c", "--exec", "--sh-exec", "--lua-exec") or (not f.startswith("--") and ("e" in f[1:] or "c" in f[1:]) and name != "socat")
                   for f in flags):
                out.add("shell.reverse_shell", v, f"{name} with -e/-c executes a program over the network")
            if name == "socat" and any(re.match(r"(?i)(exec|system):", a) for a in args):
                out.add("shell.reverse_shell", v, "socat exec:/system: connects a program to a socket")
            if "fifo" in script_flags:
                out.add("shell.reverse_shell", v, f"{name} used together with mkfifo (named-pipe reverse shell)")
            out.add("shell.raw_socket", "REVIEW", f"raw network connection with {name}")
            for a in operands:
                if re.fullmatch(r"[\w.-]+\.[\w.-]+|\d+\.\d+\.\d+\.\d+|localhost", a) and not a.isdigit():
                    self.scopes.check_host(a, out, from_code=True, what=name)
            return

        # --- logging, audit, security controls, history ---
        if name == "history" and any(f in ("-c", "-w", "-d") for f in flags):
            out.add("shell.history_clear", v, "clears shell history")
            return
        if name == "set" and "+o" in args and "history" in args:
            out.add("shell.history_clear", v, "turns shell history off")
            return
        if name in ("unset", "export"):
            if any(a in ("HISTFILE",) for a in args):
                out.add("shell.history_clear", v, "unsets HISTFILE (history no longer saved)")
            self._assignments(args, out)
            return
        if name in ("systemctl", "service", "chkconfig", "update-rc.d", "rc-service"):
            stop = any(a in ("stop", "disable", "mask", "kill", "off") for a in args)
            if stop and any(LOG_UNITS.match(a) for a in args):
                out.add("shell.disable_logging", v, f"{name} stops or disables a logging/audit service")
            if any(a in ("reboot", "poweroff", "halt", "kexec") for a in args):
                out.add("shell.shutdown", v, f"{name} shuts the machine down")
            if stop and any(a in ("firewalld", "ufw", "apparmor", "iptables", "nftables") for a in args):
                out.add("shell.disable_security", v, f"{name} stops a security service")
            return
        if name == "auditctl" and ("-D" in args or ("-e" in args and "0" in args)):
            out.add("shell.disable_logging", v, "auditctl deletes audit rules or disables auditing")
            return
        if name == "journalctl" and any(a.startswith(("--vacuum", "--rotate", "--flush")) for a in args):
            out.add("shell.log_tamper", v, "journalctl vacuum/rotate erases logs")
            return
        if name == "setenforce" and "0" in args or name == "ufw" and "disable" in args:
            out.add("shell.disable_security", v, f"{name} disables a security control")
            return
        if name in ("iptables", "ip6tables", "nft") and any(a in ("-F", "--flush", "flush") for a in args):
            out.add("shell.disable_security", v, f"{name} flushes firewall rules")
            return
        if name in ("shutdown", "reboot", "halt", "poweroff") or (name in ("init", "telinit") and operands[:1] in (["0"], ["6"])):
            out.add("shell.shutdown", v, f"{name} shuts down or reboots the machine")
            return
        if name in ("kill", "pkill", "killall"):
            if "-1" in operands or (name == "kill" and "-1" in args[-1:]) or any(a in CRITICAL_PROCS or a == "1" for a in operands):
                out.add("shell.kill_critical", v, f"{name} targets critical processes ({' '.join(operands)})")
            return
        if name == "crontab":
            if "-r" in flags:
                out.add("shell.persistence", v, "crontab -r wipes scheduled jobs")
            elif operands or "-" in args:
                out.add("shell.persistence", "REVIEW", "installs a crontab (persistence)")
            return
        if name in ("useradd", "usermod", "userdel", "passwd", "chpasswd", "visudo", "groupadd", "adduser", "deluser"):
            out.add("shell.account_change", "REVIEW", f"{name} changes system accounts")
        if name == "git" and "push" in args and any(a in ("-f", "--force", "--force-with-lease") or a.startswith("+") for a in args):
            out.add("shell.force_push", "REVIEW", "git push --force rewrites remote history")
        if name == "mount" or name == "umount":
            out.add("shell.mount", "REVIEW", f"{name} changes mounted filesystems")

        # --- network fetch / upload ---
        if name in ("curl", "wget", "http", "https", "aria2c"):
            self._network_cmd(name, args, out, cwd)

        if name in ("ssh", "scp", "sftp", "rsync"):
            for a in operands:
                m = re.match(r"(?:[\w.-]+@)?([\w.-]+):", a)
                if m and not a.startswith("/"):
                    self.scopes.check_host(m.group(1), out, from_code=True, what=name)
                else:
                    self.scopes.check_read(a, out, cwd=cwd, what=name)

        if name in SENDERS and _SECRET_VAR.search(" ".join(args)):
            out.add("shell.exfiltration", v, f"{name} sends a secret environment variable over the network")

        # --- generic path arguments (reads and writes) ---
        if name in NO_PATH_CMDS:
            return
        write_targets: list[str] = []
        if name in WRITE_CMDS:
            write_targets = operands
        elif name in ("mv",):
            write_targets = operands
        elif name in ("cp", "ln", "install"):
            write_targets = operands[-1:]
        elif name == "sed" and any(f.startswith("-i") or f == "--in-place" for f in flags):
            write_targets = operands[1:]
        for t in write_targets:
            if self._pathlike(t):
                if re.search(r"history$", t):
                    out.add("shell.history_clear", v, f"{name} on shell history {t}")
                elif name != "tee" and "/var/log" in self.scopes.norm(t, cwd) and name in ("truncate", "mv"):
                    out.add("shell.log_tamper", v, f"{name} on log file {t}")
                else:
                    self.scopes.check_write(t, out, cwd=cwd, what=name)
        for a in operands:
            if a in write_targets and name not in ("cp", "mv"):
                continue
            if self._pathlike(a):
                self.scopes.check_read(a, out, cwd=cwd, what=name)

    @staticmethod
    def _pathlike(a: str) -> bool:
        return (a.startswith(("/", "~", "./", "../", "$HOME")) or "/" in a) and "://" not in a and not a.startswith("__SUBST")

    def _network_cmd(self, name, args, out: Findings, cwd) -> None:
        uploads = []
        for i, a in enumerate(args):
            nxt = args[i + 1] if i + 1 < len(args) else ""
            if a in ("-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "-F", "--form") and "@" in nxt:
                uploads.append(nxt.split("@", 1)[1])
            elif a.startswith(("--data", "--post-file=", "--body-file=")) and "@" in a:
                uploads.append(a.split("@", 1)[1])
            elif a.startswith(("--post-file=", "--body-file=")):
                uploads.append(a.split("=", 1)[1])
            elif a in ("-T", "--upload-file") and nxt:
                uploads.append(nxt)
            if re.match(r"^[a-zA-Z][\w+.-]*://", a) or re.match(r"^[\w.-]+\.[a-z]{2,}(?:[:/]|$)", a):
                self.scopes.check_url(a, out, from_code=True, what=name)
        for u in uploads:
            u = u.strip("\"'")
            probe = Findings()
            if not self.scopes.check_read(u, probe, cwd=cwd, what="upload"):
                out.add("shell.exfiltration", self.v, f"{name} uploads protected file {self.scopes.norm(u, cwd)}")
            elif u.startswith("/") and not u.startswith(("/workspace", "/tmp")):
                out.add("shell.upload_outside", "REVIEW", f"{name} uploads {u}")

    python = None  # set by the gate: a PythonAnalyzer for python -c
