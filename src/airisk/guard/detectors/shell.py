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
import zlib

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
# What a program does, by name, when its effect does not depend on its arguments: attack tooling
# (scanning, brute force, cracking), capturing other people's traffic. REVIEW: a person decides.
EFFECT_PROGRAMS = {
    **dict.fromkeys("nmap masscan zmap unicornscan rustscan arp-scan netdiscover nikto gobuster dirb dirbuster wfuzz ffuf "
                    "sqlmap wpscan enum4linux nbtscan onesixtyone snmpwalk".split(), ("shell.network_scan", "scans hosts or services")),
    **dict.fromkeys("hydra medusa ncrack patator crowbar john hashcat ophcrack aircrack-ng reaver responder mimikatz "
                    "crackmapexec netexec evil-winrm msfconsole msfvenom searchsploit".split(),
                    ("shell.offensive_tool", "runs attack tooling (brute force, cracking, exploitation)")),
    **dict.fromkeys("tcpdump tshark dumpcap ettercap arpspoof dsniff bettercap mitmproxy mitmdump ngrep".split(),
                    ("shell.sniff", "captures or intercepts network traffic")),
    **dict.fromkeys("logkeys xinput xdotool xwd import scrot gnome-screenshot fswebcam ffmpeg-capture arecord".split(),
                    ("shell.surveillance", "records the keyboard, the screen, the camera or the microphone")),
}
# Programs a find over a whole system tree may run on every file without changing anything.
READ_ONLY_EXEC = frozenset("ls cat head tail grep egrep fgrep rg stat file wc md5sum sha1sum sha256sum sha512sum du echo "
                           "printf basename dirname realpath readlink test [ identify exiftool strings od xxd".split())
ENCRYPTORS = frozenset("gpg gpg2 openssl ccrypt age 7z zip mcrypt aescrypt".split())
INSTALLERS = {"pip": "install", "pip3": "install", "uv": "install", "pipx": "install", "npm": "install", "pnpm": "add",
              "yarn": "add", "gem": "install", "cargo": "install", "go": "install"}
# Installer options that point at a package source other than the ecosystem's default index.
_INDEX_OPTS = re.compile(r"^(?:-i|--index-url|--extra-index-url|--trusted-host|-f|--find-links|--registry|--source|--index)(?:=|$)")
_SIZE = re.compile(r"^(\d+)([kKmMgGtT]?)(?:i?[bB])?$")
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


MAX_STATIC_OUTPUT = 65536  # bytes a statically evaluated pipeline may produce (decoded payloads included)
_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z_][\w.-]*)\2")
_PRINTF_ESC = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|u[0-9a-fA-F]{4}|.)", re.S)
_SIMPLE_ESC = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"\\": b"\\", b"a": b"\a", b"b": b"\b", b"f": b"\f",
               b"v": b"\v", b"e": b"\x1b", b"'": b"'", b'"': b'"', b"0": b"\0"}
# Programs that run the rest of their command line (after their own options) as a command.
RUN_ARGV = {"systemd-run": {"-p", "--property", "-u", "--unit", "-E", "--setenv", "--uid", "--gid", "-M", "--machine",
                            "--description", "--slice", "-H", "--host", "--working-directory", "--on-calendar", "--on-active",
                            "--on-boot", "--on-startup", "--on-unit-active", "--on-unit-inactive", "--timer-property"},
            "flock": {"-w", "--timeout", "-E", "--conflict-exit-code"}, "chroot": {"--userspec", "--groups"},
            "setsid": set(), "unshare": set(), "nsenter": {"-t", "--target"}, "taskset": set(), "chrt": set(),
            "strace": {"-o", "-e", "-p", "-s", "-u"}, "ltrace": {"-o", "-e", "-p", "-s", "-u"}, "firejail": set(),
            "runuser": {"-u", "-g", "-G", "--user", "--group"}, "sg": set(), "caffeinate": set(), "xvfb-run": {"-a", "-s"},
            "proxychains": {"-f"}, "proxychains4": {"-f"}, "torsocks": set(), "catchsegv": set(), "valgrind": set(),
            "doas": {"-u", "-C"}, "pkexec": {"--user"}, "sudo": {"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U"}}
# Words after which these programs take one more word before the command itself.
RUN_ARGV_LEADING = {"flock": 1, "chroot": 1, "taskset": 1, "chrt": 1, "sg": 1}
SSH_OPTS_WITH_ARG = frozenset("-b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w -B".split())
WATCH_OPTS_WITH_ARG = frozenset("-n --interval -d --differences -q --equexit".split())
# git configuration keys whose value git runs as a shell command.
GIT_CODE_KEYS = re.compile(r"(?i)^(?:core\.(?:pager|sshcommand|editor|fsmonitor|askpass|hookspath)|alias\.[\w.-]+|pager\.[\w.-]+|"
                           r"sequence\.editor|diff\.external|diff\.[\w.-]+\.(?:command|textconv)|credential\.helper|"
                           r"gpg\.(?:program|[\w]+\.program)|filter\.[\w.-]+\.(?:clean|smudge|process)|merge\.[\w.-]+\.driver|"
                           r"uploadpack\.packobjectshook|core\.gitproxy|remote\.[\w.-]+\.(?:uploadpack|receivepack))$")
# Environment variables whose value a later program runs as a shell command.
CODE_ENV = frozenset("PAGER GIT_PAGER MANPAGER SYSTEMD_PAGER EDITOR VISUAL GIT_EDITOR GIT_SSH_COMMAND GIT_SSH GIT_ASKPASS "
                     "SSH_ASKPASS PROMPT_COMMAND BASH_ENV ENV LESSOPEN LESSCLOSE GIT_EXTERNAL_DIFF GIT_PROXY_COMMAND".split())
AWKS = frozenset("awk gawk mawk nawk busybox-awk".split())
_AWK_EXEC = re.compile(r"""\bsystem\s*\(\s*("(?:[^"\\]|\\.)*")?|\|\s*("(?:[^"\\]|\\.)*")|("(?:[^"\\]|\\.)*")\s*\|\s*getline|\|&""")
# Commands that destroy or rewrite what they are pointed at: a target computed at run time needs review.
DESTRUCTIVE = frozenset("rm rmdir unlink shred truncate dd mkfs wipefs chmod chown chgrp mv kill pkill killall".split())
BENIGN_SUBST = frozenset("mktemp pwd date basename dirname whoami id hostname nproc uname git".split())
_DEFAULT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SHELL": "/bin/bash",
                "USER": "agent", "LOGNAME": "agent", "TMPDIR": "/tmp", "IFS": " ", "OLDPWD": "/"}
_PARAM = re.compile(r"\$\{([A-Za-z_]\w*)(?:(:?[-=+?])([^}]*)|:(-?\d+)(?::(-?\d+))?|(##?|%%?)([^}]*))?\}")


def _unescape(fmt: bytes) -> bytes:
    def rep(m: re.Match) -> bytes:
        e = m.group(1)
        if e[:1] == b"x":
            return bytes([int(e[1:], 16)])
        if e[:1] == b"u":
            return chr(int(e[1:], 16)).encode("utf-8")
        if e[:1].isdigit() and len(e) > 0 and all(c in b"01234567" for c in e):
            return bytes([int(e, 8) & 0xFF])
        return _SIMPLE_ESC.get(e, b"\\" + e)
    return _PRINTF_ESC.sub(rep, fmt)


_PRINTF_CONV = re.compile(rb"%[-+ #0]*\d*(?:\.\d+)?([sbdcqxX%])")


def _printf(args: list[str]) -> bytes | None:
    if not args:
        return None
    fmt = _unescape(args[0].encode("utf-8", "surrogatepass"))
    vals = iter([a.encode("utf-8", "surrogatepass") for a in args[1:]])

    def conv(m: re.Match) -> bytes:
        c = m.group(1)
        if c == b"%":
            return b"%"
        v = next(vals, b"")
        return _unescape(v) if c == b"b" else v

    out = _PRINTF_CONV.sub(conv, fmt)
    return out if len(out) <= MAX_STATIC_OUTPUT else None


def _tr(a: str, b: str) -> dict[int, int] | None:
    def expand(x: str) -> str | None:
        if "[:" in x:
            return None
        out, i = [], 0
        while i < len(x):
            if i + 2 < len(x) and x[i + 1] == "-":
                lo, hi = ord(x[i]), ord(x[i + 2])
                if hi < lo or hi - lo > 512:
                    return None
                out.extend(chr(c) for c in range(lo, hi + 1))
                i += 3
            else:
                out.append(x[i])
                i += 1
        return "".join(out)
    sa, sb = expand(a), expand(b)
    if not sa or not sb:
        return None
    sb = sb + sb[-1] * max(0, len(sa) - len(sb))
    return {ord(x): ord(y) for x, y in zip(sa, sb)}


def _heredocs(text: str) -> tuple[str, list[str]]:
    """Cut here-document bodies out of a script: the redirect becomes ``<< __HEREDOCn__`` and the
    body is returned separately (so it is not lexed as commands, and can be analysed as what
    reads it: a shell, Python, or a file that is run later)."""
    if "<<" not in text:
        return text, []
    lines = text.split("\n")
    out: list[str] = []
    bodies: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        pending: list[tuple[str, bool]] = []

        def mark(m: re.Match) -> str:
            if m.start() > 0 and line[m.start() - 1] == "<":  # here-string <<<
                return m.group(0)
            pending.append((m.group(3), m.group(1) == "-"))
            return f"<< __HEREDOC{len(bodies) + len(pending) - 1}__"

        line = _HEREDOC.sub(mark, line) if "<<" in line else line
        out.append(line)
        i += 1
        for delim, strip_tabs in pending:
            body = []
            while i < len(lines) and (lines[i].lstrip("\t") if strip_tabs else lines[i]) != delim:
                body.append(lines[i])
                i += 1
            i += 1  # the delimiter line
            bodies.append("\n".join(body) + "\n")
    return "\n".join(out), bodies


def _collect_env(lines: list[str], env: dict[str, str], out: Findings | None = None) -> None:
    for line in lines:
        if out is not None:
            out.tick()
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
    """Variables and parameter expansions with values known statically (assignments in the
    script, HOME, PATH and other standard variables): ``${PATH:0:1}`` is ``/``, ``${X:-/root}``
    is ``/root`` when X is unset. Unknown ones are left as written."""
    def known(name: str) -> str | None:
        if name in env:
            return env[name]
        if name == "HOME":
            return home
        return _DEFAULT_ENV.get(name)

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        v = known(name)
        return v if v is not None else m.group(0)

    def param(m: re.Match) -> str:
        name, op, word, off, length, trim, pat = m.groups()
        v = known(name)
        if op is not None:
            unset = v is None or (op.startswith(":") and v == "")
            if op.endswith(("-", "=")):
                return word if unset else v
            if op.endswith("+"):
                return "" if unset else word
            return m.group(0) if v is None else v
        if v is None:
            return m.group(0)
        if off is not None:
            o = int(off)
            o = max(0, len(v) + o) if o < 0 else o
            if length is None:
                return v[o:]
            n = int(length)
            return v[o:o + n] if n >= 0 else v[o:len(v) + n]
        if trim is not None:
            if len(v) > 1024:  # trimming tries every split point: keep it cheap
                return m.group(0)
            import fnmatch
            rx = fnmatch.translate(pat).removesuffix("\\Z").removeprefix("(?s:").rstrip(")") if pat else ""
            try:
                if trim.startswith("#"):
                    mm = re.match(("(?s:" + rx + ")") if trim == "##" else ("(?s:" + rx.replace(".*", ".*?") + ")"), v)
                    return v[mm.end():] if mm else v
                cands = [i for i in range(len(v), -1, -1) if re.fullmatch("(?s:" + rx + ")", v[i:])]
                if not cands:
                    return v
                return v[:cands[-1]] if trim == "%%" else v[:cands[0]]
            except re.error:
                return m.group(0)
        return v

    for _ in range(4):
        new = _PARAM.sub(param, text) if "${" in text else text
        new = _VAR.sub(sub, new)
        if new == text:
            break
        text = new
        if len(text) > MAX_STATIC_OUTPUT:
            break
    return text


def _tokenize(line: str, out: Findings | None = None) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lex.whitespace_split = True
    lex.commenters = "#"
    if out is None or len(line) < 2048:
        return list(lex)
    toks = []
    for t in lex:  # shlex is pure Python (~3 us a character): check the deadline as it goes
        toks.append(t)
        if len(toks) % 128 == 0:
            out.tick()
    return toks


_OPS = frozenset([";", "&&", "||", "&", "(", ")", "()", ";;", "|", "|&", "\n"])
UNKNOWN = object()  # a value the analysis cannot know statically (file content, network data, ...)
_TEST_EXPR = re.compile(r"\[\[(?:[^\]]|\](?!\]))*\]\]")
# The word list is bounded: an unbounded lazy scan per "for" made 3,600 "for x in " take 12 s.
_FOR_WORD = re.compile(r"\bfor[ \t]")
_LOOP = re.compile(r"\bfor[ \t]+([A-Za-z_]\w{0,63})[ \t]+in[ \t]+([^;\n]{0,512}?)[ \t]*(?:;|\n)\s*do\b")


class _Ctx:
    """What one script analysis knows as it goes: here-document bodies, values of command
    substitutions, files the script itself has written (path -> bytes or UNKNOWN)."""

    __slots__ = ("heredocs", "written", "memo")

    def __init__(self, heredocs: list[str]):
        self.heredocs = heredocs
        self.written: dict[str, object] = {}
        self.memo: dict[tuple, object] = {}
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
        out.spend(len(text))
        if "()" in raw:
            flat = raw.replace("\n", " ")
            at = [m.start() for m in re.finditer(r"\(\)", flat)][:64]  # a fork bomb is short: look around each "()"
            if any(_FORK_BOMB.search(flat[max(0, i - 70):i + 500]) for i in at):
                out.add("shell.fork_bomb", self.v, "fork bomb (a function that recursively pipes into itself in the background)")
        text = _CONT.sub("", text)
        text, heredocs = _heredocs(text)
        ctx = _Ctx(heredocs)
        text = _IFS.sub(" ", text)
        text = _ANSI_C.sub(_decode_ansi_c, text)
        if _DEV_TCP.search(text) or any(_DEV_TCP.search(b) for b in heredocs):
            out.add("shell.reverse_shell", self.v, "uses /dev/tcp or /dev/udp (typical reverse shell or covert channel)")
        text, inner = _extract_substitutions(text)
        if len(inner) > MAX_SUBSTITUTIONS:
            out.add("shell.too_complex", self.v, f"more than {MAX_SUBSTITUTIONS} command substitutions; not analysed")
            return
        for idx, code in enumerate(inner):
            # $(echo X | base64 -d) evaluates to what the pipeline prints: substitute it, as the shell would
            value = self._static_value(code, out, cwd)
            if value is not None and "__SUBST" not in value:
                text = text.replace(f"__SUBST{idx}__", value.rstrip("\n"))
        env: dict[str, str] = {}
        lines = text.split("\n")
        _collect_env(lines, env, out)
        ifs = env.get("IFS", "")
        if ifs and not ifs.isspace():  # IFS=, makes "rm,-rf,/" three words when expanded unquoted
            table = {ord(c): " " for c in ifs if not c.isspace()}
            env = {k: (v.translate(table) if k != "IFS" else v) for k, v in env.items()}
        loops: dict[str, list[str]] = {}
        # the first 64 for-loops get their variables bound (a loop beyond that leaves its variable
        # unresolved: a destructive command on it then needs review)
        for pos in [m.start() for m in _FOR_WORD.finditer(text)][:64] if "for" in text else ():
            m = _LOOP.match(text, pos)
            if m:
                loops[m.group(1)] = _expand(m.group(2), env, self.scopes.home).split()[:16]
        # substitutions whose output is fetched from the network / is an environment dump
        subst_info: list[set[str]] = []
        for code in inner:
            sub_out = Findings(deadline=out.deadline, work=out.work)
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
            out.spend(len(line))
            if "[[" in line:  # a test expression runs nothing (its substitutions were analysed above);
                line = _TEST_EXPR.sub("[[ __TEST__ ]]", line)  # its regex operands must not be lexed as commands
            variants = [line]
            for var, words in loops.items():  # a loop body runs once per word of the loop's list
                if words and re.search(r"\$\{?" + var + r"\b", line):
                    rx = re.compile(r"\$\{" + var + r"\}|\$" + var + r"\b")
                    variants = [rx.sub(lambda _m, w=w: w, v) for v in variants for w in words][:16]
            for variant in variants:
                try:
                    toks = _tokenize(variant, out)
                except ValueError as e:  # unbalanced quotes: cannot know what would run
                    out.add("shell.parse_error", self.v, f"shell text cannot be parsed ({e}); refusing to guess")
                    break
                parsed.extend(self._pipelines(toks))
            if len(parsed) > MAX_COMMANDS:
                out.add("shell.too_complex", self.v, f"more than {MAX_COMMANDS} commands; not analysed")
                return
        if re.search(r"\bwhile\s+(?:true|:|\[\s*1\s*\])\s*;?\s*do\b", text) and not re.search(r"\b(?:break|exit|return)\b", text):
            out.add("shell.resource_exhaustion", "REVIEW", "loops forever (while true without break/exit)")
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
        for f in downloaded:
            ctx.written[f] = UNKNOWN
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
            self._pipeline(pipeline, out, cur, depth, inner, subst_info, script_flags, ctx)
        if "send" in script_flags and any(f.rule_id.startswith("scope.fs.read") for f in out.items[before:]):
            out.add("shell.exfiltration", self.v, "script reads a protected or system file and sends data over the network")

    # -- static evaluation (what a pipeline prints, when it can be known without running it) --
    def _static_value(self, code: str, out: Findings, cwd) -> str | None:
        out.spend(len(code))
        try:
            pipes = self._pipelines(_tokenize(_ANSI_C.sub(_decode_ansi_c, _IFS.sub(" ", code)), out))
        except ValueError:
            return None
        if len(pipes) != 1:
            return None
        data = self._stdout(pipes[0], len(pipes[0]) - 1, _Ctx([]), out, cwd)
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else None

    def _stdin(self, pipeline, k: int, ctx: _Ctx, out: Findings, cwd):
        """What stage k reads on stdin: bytes, UNKNOWN, or None (nothing: the terminal)."""
        for op, target in pipeline[k][1]:
            if op == "<<<":
                return (target + "\n").encode("utf-8", "surrogatepass")
            if op in ("<<", "<<-"):
                m = re.fullmatch(r"__HEREDOC(\d+)__", target)
                if m and int(m.group(1)) < len(ctx.heredocs):
                    return ctx.heredocs[int(m.group(1))].encode("utf-8", "surrogatepass")
                return UNKNOWN
            if op == "<":
                return ctx.written.get(self.scopes.norm(target, cwd), UNKNOWN)
        if k == 0:
            return None
        return self._stdout(pipeline, k - 1, ctx, out, cwd)

    def _stdout(self, pipeline, k: int, ctx: _Ctx, out: Findings, cwd):
        """What stage k writes to the pipe: bytes when known statically, else UNKNOWN."""
        key = (id(pipeline), k)
        hit = ctx.memo.get(key)
        if hit is not None and hit[0] is pipeline:  # the entry holds the pipeline, so its id is not reused
            return hit[1]
        if k > 0:
            prev = ctx.memo.get((id(pipeline), k - 1))
            if prev is None or prev[0] is not pipeline:
                for j in range(k):  # earlier stages first, so the stage-to-stage chain never recurses deeply
                    self._stdout(pipeline, j, ctx, out, cwd)
                    out.tick()
        res = self._stdout_uncached(pipeline, k, ctx, out, cwd)
        if isinstance(res, bytes):
            if len(res) > MAX_STATIC_OUTPUT:
                res = UNKNOWN
            else:
                out.spend(len(res))
        ctx.memo[key] = (pipeline, res)
        return res

    def _stdout_uncached(self, pipeline, k: int, ctx: _Ctx, out: Findings, cwd):
        argv, redirs = pipeline[k]
        if any(op in (">", ">>", "&>", ">|") for op, _ in redirs):
            return b""  # stdout goes to a file
        cmd = self._strip(argv)
        if not cmd:
            return UNKNOWN
        name, args = posixpath.basename(cmd[0]), cmd[1:]
        if name == "echo":
            flags = ""
            while args and re.fullmatch(r"-[neE]+", args[0]):
                flags += args[0][1:]
                args = args[1:]
            data = " ".join(args).encode("utf-8", "surrogatepass")
            if "e" in flags:
                data = _unescape(data)
            return data + (b"" if "n" in flags else b"\n")
        if name == "printf":
            if args[:1] == ["--"]:
                args = args[1:]
            return _printf(args) if args and not args[0].startswith("-v") else UNKNOWN
        if name in ("true", ":"):
            return b""
        stdin = self._stdin(pipeline, k, ctx, out, cwd)
        files = [a for a in args if not a.startswith("-")]
        if name == "cat":
            if not files or files == ["-"]:
                return stdin if stdin is not None else UNKNOWN
            parts = [ctx.written.get(self.scopes.norm(f, cwd), UNKNOWN) for f in files]
            return b"".join(parts) if all(isinstance(p, bytes) for p in parts) else UNKNOWN
        if not isinstance(stdin, bytes) or (files and name not in ("tr", "xxd", "tee")):
            return UNKNOWN
        try:
            if name in ("base64", "base32", "basenc") and any(a in ("-d", "--decode", "-D") or re.fullmatch(r"-\w*d\w*", a)
                                                             for a in args):
                blob = re.sub(rb"\s+", b"", stdin)
                if name == "base32":
                    return base64.b32decode(blob + b"=" * (-len(blob) % 8))
                return base64.b64decode(blob + b"=" * (-len(blob) % 4), altchars=b"-_" if b"-" in blob or b"_" in blob else None)
            if name == "xxd" and "-r" in args:
                return bytes.fromhex(re.sub(r"\s+", "", stdin.decode("ascii")))
            if name == "rev":
                return b"\n".join(line[::-1] for line in stdin.split(b"\n"))
            if name == "tr" and len(files) == 2 and not args[0].startswith("-"):
                table = _tr(files[0], files[1])
                return stdin.decode("utf-8", "replace").translate(table).encode() if table else UNKNOWN
            if name in ("gunzip", "zcat") or (name == "gzip" and "-d" in args):
                d = zlib.decompressobj(47)
                res = d.decompress(stdin, MAX_STATIC_OUTPUT + 1)
                return res if len(res) <= MAX_STATIC_OUTPUT else UNKNOWN
            if name == "tee":
                return stdin
        except (binascii.Error, ValueError, UnicodeDecodeError, zlib.error):
            return UNKNOWN
        return UNKNOWN

    def _run_text(self, lang: str, data, what: str, out: Findings, cwd, depth: int, *, source: str = "") -> None:
        """Analyse text that an interpreter will run (known) or send it to REVIEW (unknown)."""
        if data is None:
            return
        if data is UNKNOWN:
            out.add("shell.dynamic_exec", "REVIEW", f"{what}: runs code the gate cannot see{source}")
            return
        text = data.decode("utf-8", "replace")
        if lang in SHELLS or lang in ("source", ".", "eval"):
            self.analyze(text, out, cwd=cwd, depth=depth + 1)
        elif lang.startswith("python") and self.python is not None:
            self.python.analyze(text, out, cwd=cwd, depth=depth + 1)
        else:
            self._oneliner(lang, text, out, cwd, depth)

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
            if a == "function":
                i += 2  # "function NAME": a definition; the body follows
            elif a == "case":
                return []  # "case WORD in": WORD is data, not a command
            elif a == "[[":
                break  # a test expression: "[[" is the command (it runs nothing)
            elif a in _KEYWORDS:
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

    def _pipeline(self, pipeline, out: Findings, cwd, depth, inner, subst_info, script_flags, ctx: _Ctx | None = None) -> None:
        ctx = ctx if ctx is not None else _Ctx([])
        names = []
        for argv, _ in pipeline:
            cmd = self._strip(argv)
            names.append(posixpath.basename(cmd[0]) if cmd else "")
        stages = [self._strip(a) for a, _ in pipeline]
        # an interpreter reading its program from stdin (pipe, here-string, here-document, < file)
        for k, (name, cmd) in enumerate(zip(names, stages)):
            if name not in INTERPRETERS or name in ("source", "."):
                continue
            reads_stdin = len(cmd) == 1 or all(a.startswith("-") and a not in ("-c", "-e", "-m") for a in cmd[1:]) or "-" in cmd[1:]
            if not reads_stdin:
                continue
            before = set(names[:k])
            source = ""
            if before & FETCHERS or any("fetch" in self._flags_argv(a) for a in stages[:k]):
                out.add("shell.download_exec", self.v, f"downloads code and pipes it into {name} (curl|sh pattern)")
                source = " (fetched from the network)"
            if before & DECODERS:
                out.add("shell.obfuscated_exec", self.v, f"decodes an encoded payload and pipes it into {name}")
                self._decode_payloads(stages[:k], out, cwd, depth)
            if before & RAW_SOCKET:
                out.add("shell.reverse_shell", self.v, f"pipes a network connection into {name}")
                source = " (read from a network connection)"
            data = self._stdin(pipeline, k, ctx, out, cwd)
            if data is not None and not (source and data is UNKNOWN):
                self._run_text(name, data, f"{name} reads its program from stdin", out, cwd, depth)
        # schedulers fed a script on stdin: persistence, and the script is code (at, batch, crontab -)
        for k, (name, cmd) in enumerate(zip(names, stages)):
            if name in ("at", "batch") or (name == "crontab" and (cmd[1:] in ([], ["-"]) or cmd[-1:] == ["-"])):
                data = self._stdin(pipeline, k, ctx, out, cwd)
                if data is None:
                    continue
                out.add("shell.persistence", "REVIEW", f"{name} schedules commands to run later (persistence)")
                if isinstance(data, bytes) and name == "crontab":
                    lines = [ln.split(None, 5) for ln in data.decode("utf-8", "replace").splitlines()
                             if ln.strip() and not ln.lstrip().startswith("#")]
                    data = "\n".join(p[5] if len(p) == 6 and not p[0].startswith("@") else " ".join(p[1:]) if p[0].startswith("@")
                                     else " ".join(p) for p in lines).encode()
                self._run_text("sh", data, f"{name} runs a script", out, cwd, depth)
        # environment / secret dumps sent over the network
        if any(n in SENDERS for n in names):
            if any(n in ENV_DUMP and len(s) == 1 for n, s in zip(names, stages)):
                out.add("shell.exfiltration", self.v, "sends an environment dump over the network")
        for k, (argv, redirs) in enumerate(pipeline):
            for a in argv:  # PAGER='...' cmd: a variable some program runs as a command
                m = _ASSIGN.match(a)
                if not m:
                    break
                if m.group(1) in CODE_ENV:
                    self.analyze(m.group(2), out, cwd=cwd, depth=depth + 1)
            cmd = self._prep(argv, out)
            xargs = self._xargs(argv, pipeline, k, ctx, out, cwd)
            if xargs is not None:
                for run in xargs:
                    self._command(run, [], out, cwd, depth, pipeline=stages, script_flags=script_flags,
                                  inner=inner, subst_info=subst_info, ctx=ctx)
                cmd = []
            self._redirs(redirs, out, cwd)
            if cmd:
                self._command(cmd, redirs, out, cwd, depth, pipeline=stages, script_flags=script_flags,
                              inner=inner, subst_info=subst_info, ctx=ctx)
            elif argv and xargs is None:  # assignments only
                self._assignments(argv, out, cwd, depth)
            self._record_writes(pipeline, k, cmd, ctx, out, cwd)

    def _record_writes(self, pipeline, k, cmd, ctx: _Ctx, out: Findings, cwd) -> None:
        """Remember what this stage writes to files (for a later ``sh FILE`` / ``./FILE``)."""
        redirs = pipeline[k][1]
        targets = [t for op, t in redirs if op in (">", ">>", "&>", ">|", "&>>") and t and not t.startswith("&")]
        name = posixpath.basename(cmd[0]) if cmd else ""
        if name == "tee":
            targets += [a for a in cmd[1:] if not a.startswith("-")]
        if name in ("cp", "mv", "install") and len(cmd) >= 3:
            ops = [a for a in cmd[1:] if not a.startswith("-")]
            if len(ops) >= 2:
                src = ctx.written.get(self.scopes.norm(ops[0], cwd))
                if src is not None:
                    ctx.written[self.scopes.norm(ops[-1], cwd)] = src
        if not targets:
            return
        if name == "tee":
            data = self._stdin(pipeline, k, ctx, out, cwd)
        else:
            data = self._stdout_stage_with_input(pipeline, k, ctx, out, cwd)
        for t in targets:
            p = self.scopes.norm(t, cwd)
            prev = ctx.written.get(p)
            if any(op == ">>" for op, tt in redirs if tt == t) and isinstance(prev, bytes) and isinstance(data, bytes):
                ctx.written[p] = prev + data
            else:
                ctx.written[p] = data if isinstance(data, bytes) else UNKNOWN

    def _stdout_stage_with_input(self, pipeline, k, ctx, out, cwd):
        argv, redirs = pipeline[k]
        return self._stdout(pipeline[:k] + [(argv, [r for r in redirs if r[0] in ("<", "<<", "<<<")])], k, ctx, out, cwd)

    def _xargs(self, argv, pipeline, k, ctx: _Ctx, out: Findings, cwd) -> list[list[str]] | None:
        """The command lines ``xargs CMD`` would run, built from its input when the input is known,
        else from where it comes from (find/ls/grep -l of a directory); None if not xargs."""
        i = 0
        while i < len(argv) and (argv[i] in _KEYWORDS or _ASSIGN.match(argv[i]) or
                                 posixpath.basename(argv[i]) in PREFIXES - {"xargs"}):
            i += 1
        if i >= len(argv) or posixpath.basename(argv[i]) != "xargs":
            return None
        i += 1
        repl = None
        while i < len(argv) and argv[i].startswith("-"):
            a = argv[i]
            if a == "-I" and i + 1 < len(argv):
                repl = argv[i + 1]
                i += 2
                continue
            if a.startswith("-I") and len(a) > 2:
                repl = a[2:]
            elif a in ("-i", "--replace"):
                repl = "{}"
            elif a in ("-n", "-L", "-P", "-d", "-s", "-E", "-a", "--max-args", "--max-procs", "--delimiter", "--arg-file"):
                i += 1
            i += 1
        cmd = argv[i:] or ["echo"]
        data = self._stdin(pipeline, k, ctx, out, cwd)
        if isinstance(data, bytes):
            items = data.decode("utf-8", "replace").split()[:64]
        else:
            src = self._strip(pipeline[k - 1][0]) if k > 0 else []
            srcname = posixpath.basename(src[0]) if src else ""
            roots = [a for a in src[1:] if not a.startswith("-")] if srcname in ("find", "ls", "fd", "du") else []
            if srcname in ("find", "ls", "fd", "du", "git", "grep", "rg", "locate"):
                root = (roots[0] if roots and srcname in ("find", "ls") else ".")
                items = [root.rstrip("/") + "/x" if root not in ("/",) else "/x"]
                if srcname == "find" and not any(a in ("-name", "-iname", "-path", "-type", "-newer", "-mtime", "-regex") for a in src):
                    items = [root]
            else:
                name = posixpath.basename(self._strip(cmd)[0]) if self._strip(cmd) else ""
                if name in DESTRUCTIVE:
                    out.add("shell.dynamic_target", "REVIEW", f"xargs runs {name} on input computed at run time")
                items = []
        if repl is not None:
            return [[a.replace(repl, it) for a in cmd] for it in items[:8]] or [cmd]
        return [cmd + items]

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

    def _assignments(self, argv, out: Findings, cwd=None, depth: int = 0) -> None:
        for a in argv:
            m = _ASSIGN.match(a)
            if not m:
                continue
            name, val = m.group(1), m.group(2)
            if name in CODE_ENV and val:
                self.analyze(val, out, cwd=cwd, depth=depth + 1)
            if name in ("HISTFILE",) and val in ("/dev/null", "") or name in ("HISTSIZE", "HISTFILESIZE") and val == "0":
                out.add("shell.history_clear", self.v, f"disables shell history ({name}={val})")
            if name == "LD_PRELOAD":
                out.add("shell.ld_preload", self.v, "sets LD_PRELOAD (library injection)")

    def _subst_benign(self, word: str, inner) -> bool:
        """A word made only of substitutions of harmless generators (mktemp, pwd, date ...)."""
        idxs = [int(m) for m in re.findall(r"__SUBST(\d+)__", word)]
        if not idxs:
            return False
        for i in idxs:
            code = inner[i].split() if i < len(inner) else []
            if not code or posixpath.basename(code[0]) not in BENIGN_SUBST:
                return False
        return True

    def _code_carriers(self, name, cmd, args, operands, out: Findings, cwd, depth, ctx: _Ctx, inner) -> bool:
        """Commands whose arguments are themselves code (wrappers, aliases, traps, awk programs,
        remote shells, git's command-valued settings) and commands named at run time. Returns True
        when the command is fully handled here."""
        nxt = depth + 1
        if "__SUBST" in cmd[0] or "$" in cmd[0]:
            out.add("shell.dynamic_command", "REVIEW", f"runs a command whose name is computed at run time ({cmd[0][:40]})")
            return True
        if name in DESTRUCTIVE:
            for a in operands:
                if ("$" in a or "__SUBST" in a) and not self._subst_benign(a, inner):
                    out.add("shell.dynamic_target", "REVIEW", f"{name} on a target computed at run time ({a[:40]})")
        if name == "alias":
            for a in args:
                if "=" in a:
                    self.analyze(a.split("=", 1)[1], out, cwd=cwd, depth=nxt)
            return True
        if name == "trap" and args:
            self.analyze(args[0] if args[0] != "--" else " ".join(args[1:2]), out, cwd=cwd, depth=nxt)
            return True
        if name == "watch":
            i = 0
            while i < len(args) and args[i].startswith("-"):
                i += 2 if args[i] in WATCH_OPTS_WITH_ARG else 1
            if args[i:]:
                self.analyze(" ".join(args[i:]), out, cwd=cwd, depth=nxt)
            return True
        if name in ("docker", "podman", "nerdctl", "kubectl", "oc") and args:
            sub = args[0]
            rest = args[1:]
            if name in ("kubectl", "oc") and sub in ("exec", "debug", "run") and "--" in rest:
                self.analyze(shlex.join(rest[rest.index("--") + 1:]), out, cwd=cwd, depth=nxt)
            elif name not in ("kubectl", "oc") and sub in ("run", "exec", "create"):
                hostile = [a for a in rest if a in ("--privileged", "--pid=host", "--net=host", "--network=host", "--ipc=host")
                           or re.match(r"^(?:-v|--volume|--mount)?=?(?:type=bind,\s*)?(?:source=|src=)?(?:/|/etc|/root|/home|/var/run/docker\.sock)(?::|,|$)", a)]
                vols = [rest[i + 1] for i, a in enumerate(rest[:-1]) if a in ("-v", "--volume", "--mount")]
                hostile += [v for v in vols if re.match(r"^(?:type=bind,\s*)?(?:source=|src=)?(?:/|/etc|/root|/home|/var/run/docker\.sock)(?::|,|$)", v)]
                if hostile:
                    out.add("shell.container_escape", self.v,
                            f"{name} {sub} gives the container the host ({', '.join(hostile[:2])}): what runs inside acts on the host")
                i = 0
                with_val = {"-v", "--volume", "--mount", "-e", "--env", "-p", "--publish", "--name", "-w", "--workdir", "-u",
                            "--user", "--network", "--net", "--entrypoint", "-l", "--label", "--env-file", "-h", "--hostname",
                            "--add-host", "--cpus", "-m", "--memory", "--restart", "--device", "--cap-add", "--security-opt"}
                while i < len(rest) and rest[i].startswith("-"):
                    i += 2 if rest[i] in with_val else 1
                inner_cmd = rest[i + 1:]  # after the image / container
                if inner_cmd:
                    self.analyze(shlex.join(inner_cmd), out, cwd=cwd, depth=nxt)
            return False
        if name == "ssh":
            i = 0
            while i < len(args) and args[i].startswith("-"):
                i += 2 if args[i] in SSH_OPTS_WITH_ARG else 1
            if i < len(args):
                host = args[i].rsplit("@", 1)[-1]
                self.scopes.check_host(host, out, from_code=True, what="ssh")
                if args[i + 1:]:
                    self.analyze(" ".join(args[i + 1:]), out, cwd=cwd, depth=nxt)
            return False  # the generic checks (secrets in the command line) still apply
        if name in ("script", "su", "runuser") and "-c" in args:
            i = args.index("-c")
            if i + 1 < len(args):
                self.analyze(args[i + 1], out, cwd=cwd, depth=nxt)
            return name == "script"
        if name in RUN_ARGV:
            i, with_arg = 0, RUN_ARGV[name]
            while i < len(args) and args[i].startswith("-") and args[i] != "--":
                i += 2 if args[i] in with_arg else 1
            if i < len(args) and args[i] == "--":
                i += 1
            i += RUN_ARGV_LEADING.get(name, 0)
            if name == "flock" and i < len(args) and args[i] == "-c" and i + 1 < len(args):
                self.analyze(args[i + 1], out, cwd=cwd, depth=nxt)
                return True
            if name == "systemd-run" and any(a.startswith(("--on-", "--timer")) for a in args):
                out.add("shell.persistence", "REVIEW", "systemd-run schedules a timer (persistence)")
            if i < len(args):
                self.analyze(shlex.join(args[i:]), out, cwd=cwd, depth=nxt)
                return True
            return False
        if name == "find":
            root = operands[0] if operands and not operands[0].startswith(("(", "!")) else "."
            filtered = any(a in ("-name", "-iname", "-path", "-ipath", "-regex", "-type", "-newer", "-mtime", "-mmin", "-size")
                           for a in args)
            i = 0
            while i < len(args):
                if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
                    j = i + 1
                    while j < len(args) and args[j] not in (";", "+"):
                        j += 1
                    prog = posixpath.basename(args[i + 1]) if i + 1 < j else ""
                    here = (cwd or self.scopes.cwd).rstrip("/")
                    own = self.scopes.norm(root, cwd) == here or self.scopes.norm(root, cwd).startswith(here + "/")
                    if prog and prog not in READ_ONLY_EXEC and not own and self.scopes.is_critical(root, cwd):
                        # every file of a system tree or of someone's home rewritten (encrypted, edited,
                        # moved): what ransomware and wipers do
                        rule = "shell.mass_encrypt" if prog in ENCRYPTORS else "shell.mass_modify"
                        out.add(rule, self.v, f"find over {self.scopes.norm(root, cwd)} runs {prog} on every file")
                    seg = [a.replace("{}", root if not filtered else root.rstrip("/") + "/x") for a in args[i + 1:j]]
                    if seg:
                        sub = Findings(deadline=out.deadline, work=out.work)
                        self.analyze(shlex.join(seg), sub, cwd=cwd, depth=nxt)
                        for f in sub.items:
                            if f.rule_id != "shell.recursive_delete" or not filtered:
                                out.add(f.rule_id, f.verdict, f"find -exec: {f.reason}")
                    i = j
                i += 1
            return False
        if name in AWKS:
            prog = next((a for a in args if not a.startswith("-")), "")
            for m in _AWK_EXEC.finditer(prog):
                lit = m.group(1) or m.group(2) or m.group(3)
                if lit:
                    self.analyze(lit[1:-1].replace('\\"', '"').replace("\\\\", "\\"), out, cwd=cwd, depth=nxt)
                else:
                    out.add("shell.dynamic_exec", "REVIEW", f"{name} runs a command built at run time (system() / pipes)")
            return False
        if name == "git":
            i = 0
            while i < len(args) and args[i].startswith("-"):
                if args[i] == "-c" and i + 1 < len(args):
                    key, _, val = args[i + 1].partition("=")
                    if GIT_CODE_KEYS.match(key) and val:
                        self.analyze(val.lstrip("!"), out, cwd=cwd, depth=nxt)
                    i += 2
                    continue
                i += 2 if args[i] in ("-C", "--git-dir", "--work-tree", "--namespace") else 1
            rest = args[i:]
            if rest[:1] == ["config"]:
                vals = [a for a in rest[1:] if not a.startswith("-")]
                if len(vals) >= 2 and GIT_CODE_KEYS.match(vals[0]):
                    sub = Findings(deadline=out.deadline, work=out.work)
                    self.analyze(vals[1].lstrip("!"), sub, cwd=cwd, depth=nxt)
                    for f in sub.items:
                        out.add(f.rule_id, f.verdict, f.reason)
                    # a plain program (less, vim) is configuration; a script or a hostile command
                    # stored for git to run on every use is persistence
                    if any(f.verdict != "ALLOW" for f in sub.items) or any(c in vals[1] for c in "|;&$`<>"):
                        out.add("shell.persistence", "REVIEW", f"git config stores a command in {vals[0]}")
            return False
        # running a file this script wrote: analyse what was written
        target = None
        lang = name
        if name in INTERPRETERS:
            ops = [a for a in args if not a.startswith("-")]
            if ops and "-c" not in args and "-e" not in args:
                target = ops[0]
        elif cmd[0].startswith(("./", "/", "~")) or "/" in cmd[0]:
            target, lang = cmd[0], "sh"
        if target is not None:
            p = self.scopes.norm(target, cwd)
            if p in ctx.written:
                data = ctx.written[p]
                if isinstance(data, bytes) and lang == "sh":
                    first = data.split(b"\n", 1)[0]
                    lang = "python" if b"python" in first else "perl" if b"perl" in first else "sh"
                self._run_text(lang, data, f"runs {target}, which this command wrote", out, cwd, depth)
        return False

    def _oneliner(self, name: str, code: str, out: Findings, cwd, depth: int) -> None:
        """perl/ruby/php/node code: the shell commands it runs, and socket + shell (reverse shell)."""
        for m in re.finditer(r"(?:system|exec|popen|spawn|execSync|shell_exec|passthru)\s*\(?\s*[\"']([^\"']+)[\"']|`([^`]+)`", code):
            self.analyze(m.group(1) or m.group(2), out, cwd=cwd, depth=depth + 1)
        if re.search(r"socket|Socket|TCPSocket|fsockopen|net\.connect", code) and re.search(r"exec|system|spawn|/bin/sh|popen", code):
            out.add("shell.reverse_shell", self.v, f"{name} code opens a socket and runs a shell")

    # -- per command --
    def _command(self, cmd, redirs, out: Findings, cwd, depth, *, pipeline, script_flags, inner=(), subst_info=(), ctx=None):
        out.tick()
        name = posixpath.basename(cmd[0])
        args = cmd[1:]
        flags = [a for a in args if a.startswith("-")]
        operands = [a for a in args if not a.startswith("-")]
        short = "".join(a[1:] for a in flags if not a.startswith("--"))
        v = self.v
        ctx = ctx if ctx is not None else _Ctx([])

        if self._code_carriers(name, cmd, args, operands, out, cwd, depth, ctx, inner):
            return

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
            self._oneliner(name, " ".join(args), out, cwd, depth)
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
            if self._dd_bytes(args) >= 2 ** 30 and not any(READ_DEV.match(a[3:]) for a in args if a.startswith("of=")):
                out.add("shell.resource_exhaustion", "REVIEW", "dd writes a gigabyte or more")
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

        # --- sensitive reads: the whole environment (API keys, tokens) printed for the agent ---
        last_stage = not pipeline or pipeline[-1] == cmd  # piped into grep & co., the dump is filtered
        if last_stage and (name in ("env", "printenv") and not operands) or (name == "export" and args == ["-p"]) or \
                (name == "declare" and args in (["-p"], ["-x"])) or (name == "set" and not args):
            out.add("shell.env_dump", "REVIEW", f"{name} prints every environment variable (credentials included)")
        # --- resource exhaustion ---
        if name == "yes" and any(op in (">", ">>") for op, _ in redirs):
            out.add("shell.resource_exhaustion", "REVIEW", "yes redirected to a file fills the disk")
        if name == "fallocate" or (name == "dd" and any(a.startswith("if=/dev/zero") or a.startswith("if=/dev/urandom") for a in args)
                                   and not any(a.startswith("count=") for a in args)):
            out.add("shell.resource_exhaustion", "REVIEW", f"{name} writes an unbounded or preallocated amount of data")

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
            self._assignments(args, out, cwd, depth)
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
            elif name != "kill":  # by name: every matching process of every program, not the agent's own job
                out.add("shell.kill_process", "REVIEW", f"{name} terminates processes by name ({' '.join(operands)[:80]})")
            return
        if name in EFFECT_PROGRAMS:
            rule, what = EFFECT_PROGRAMS[name]
            out.add(rule, "REVIEW", f"{name} {what}")
        if self._network_down(name, args):
            out.add("shell.network_disrupt", v, f"{name} takes the network down ({' '.join(args)[:80]})")
            return
        if name in INSTALLERS or (name.startswith("python") and args[:2] == ["-m", "pip"]):
            self._install(name, args, out)
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
    def _network_down(name: str, args: list[str]) -> bool:
        """Interfaces, addresses or routes removed: the machine (and the agent's operator) lose the network."""
        if name in ("ifdown",) or (name == "ifconfig" and "down" in args):
            return True
        if name == "ip" and args:
            obj = args[0]
            if obj in ("link", "l") and "down" in args:
                return True
            if obj in ("addr", "address", "a", "route", "r", "neigh") and any(a in ("flush", "del", "delete") for a in args[1:3]):
                return True
        if name == "nmcli" and (args[:2] == ["networking", "off"] or args[:1] in (["radio"],) and "off" in args
                                or ("down" in args and args[:1] in (["con"], ["connection"], ["dev"], ["device"]))):
            return True
        return False

    def _install(self, name: str, args: list[str], out: Findings) -> None:
        """Packages from somewhere other than the default index (a URL, a VCS, another index) run
        their install scripts with the agent's rights: REVIEW."""
        verb = INSTALLERS.get(name, "install")
        rest = args[2:] if name.startswith("python") else args
        if verb not in rest:
            return
        for a in rest[rest.index(verb) + 1:]:
            if _INDEX_OPTS.match(a) or re.match(r"(?i)^(?:git\+|hg\+|svn\+|bzr\+)?(?:https?|ftp|file)://|^git\+|^git@", a):
                out.add("shell.untrusted_install", "REVIEW", f"{name} installs from a source other than the default index ({a[:80]})")
                return

    @staticmethod
    def _dd_bytes(args: list[str]) -> int:
        units = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}
        vals = {}
        for a in args:
            k, _, v = a.partition("=")
            m = _SIZE.match(v) if k in ("bs", "obs", "count") else None
            if m:
                vals[k] = int(m.group(1)) * (units[m.group(2).lower()] if k != "count" else 1)
        return vals.get("bs", vals.get("obs", 512)) * vals.get("count", 0)

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
