"""Resource scopes: filesystem path normalisation and glob sets, network hosts, SQL table globs.

Paths are normalised as strings (the gate never touches the disk): ``~`` and ``$HOME`` become the
policy's home, relative paths are joined to the working directory, ``..``/``.``/repeated slashes
collapse, and well-known symlink routes in the string (``/proc/self/root``, ``/proc/<pid>/cwd``,
``/dev/fd``) are followed, so ``/tmp/../etc//shadow`` and ``/proc/self/root/etc/shadow`` are both
``/etc/shadow``.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from urllib.parse import urlsplit

_PROC_ROOT = re.compile(r"^/proc/(?:self|\d+|thread-self)/root(?=/|$)")
_PROC_CWD = re.compile(r"^/proc/(?:self|\d+|thread-self)/cwd(?=/|$)")
_HOME_VAR = re.compile(r"^(?:\$HOME|\$\{HOME\})(?=/|$)")


def normalize_path(path: str, *, home: str = "/home/agent", cwd: str = "/workspace") -> str:
    p = path.strip().strip("'\"")
    if p.startswith("file://"):
        p = p[7:]
    if p == "~" or p.startswith("~/"):
        p = home + p[1:]
    elif p.startswith("~"):  # ~user/...
        user, _, rest = p[1:].partition("/")
        p = ("/root" if user == "root" else f"/home/{user}") + ("/" + rest if rest else "")
    p = _HOME_VAR.sub(home, p)
    if not p.startswith("/"):
        p = cwd.rstrip("/") + "/" + p
    p = posixpath.normpath(p)
    if p.startswith("//"):  # normpath keeps a leading double slash (POSIX); we do not
        p = "/" + p.lstrip("/")
    for _ in range(4):  # symlink routes can nest: /proc/self/root/proc/self/root/...
        q = _PROC_ROOT.sub("", p) or "/"
        q = _PROC_CWD.sub(cwd.rstrip("/"), q)
        q = posixpath.normpath(q) if q != p else q
        if q == p:
            break
        p = q if q.startswith("/") else "/" + q
    return p


def glob_to_regex(glob: str) -> str:
    """``**`` spans directories, ``*`` and ``?`` stay inside one; ``dir/**`` also matches ``dir``."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if i + 1 < n and glob[i + 1] == "*":
                if i + 2 < n and glob[i + 2] == "/":
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                if out and out[-1] == "/" and i + 2 == n:  # trailing /** matches the dir too
                    out[-1] = "(?:/.*)?"
                    i += 2
                    continue
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i)
            if j == -1:
                out.append(re.escape(c))
            else:
                out.append(glob[i:j + 1])
                i = j + 1
                continue
        elif c == "/":
            out.append("/")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class GlobSet:
    """Compiled set of path globs (one alternation regex, matched in one call)."""

    __slots__ = ("globs", "_rx")

    def __init__(self, globs: list[str], *, home: str = "/home/agent", expand_paths: bool = True):
        self.globs = list(globs)
        parts = []
        for g in globs:
            if expand_paths and (g.startswith("~") or g.startswith("$HOME")):
                g = home + g[1:] if g.startswith("~") else home + g[5:]
            parts.append(glob_to_regex(g))
        self._rx = re.compile("^(?:" + "|".join(parts) + ")$") if parts else None

    def __bool__(self) -> bool:
        return self._rx is not None

    def match(self, s: str) -> bool:
        return self._rx is not None and self._rx.match(s) is not None

    def which(self, s: str) -> str | None:
        """The first glob that matches (for explanations; slow path only)."""
        if not self.match(s):
            return None
        for g, rx in ((g, re.compile("^" + glob_to_regex(g) + "$")) for g in self.globs):
            if rx.match(s):
                return g
        return self.globs[0] if self.globs else None


# --- network ---------------------------------------------------------------------------------

class HostSet:
    """Host patterns: exact names, ``*.example.com`` (any subdomain), CIDR blocks."""

    __slots__ = ("exact", "suffixes", "nets")

    def __init__(self, patterns: list[str]):
        self.exact: frozenset[str] = frozenset(p.lower() for p in patterns if not p.startswith("*.") and "/" not in p)
        self.suffixes = tuple(p[1:].lower() for p in patterns if p.startswith("*."))
        nets = []
        for p in patterns:
            if "/" in p:
                nets.append(ipaddress.ip_network(p, strict=False))
        self.nets = tuple(nets)

    def __bool__(self) -> bool:
        return bool(self.exact or self.suffixes or self.nets)

    def match(self, host: str) -> bool:
        h = host.lower().rstrip(".")
        if h in self.exact or (self.suffixes and h.endswith(self.suffixes)):
            return True
        if self.nets:
            ip = parse_ip(h)
            if ip is not None and any(ip in n for n in self.nets):
                return True
        return False


def parse_ip(host: str):
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    # Obfuscated IPv4 forms curl and browsers accept: decimal (2130706433), hex (0x7f000001), octal.
    try:
        if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", h):
            return ipaddress.ip_address(int(h, 0) if h.startswith("0x") else int(h))
        if re.fullmatch(r"(?:0x[0-9a-fA-F]+|\d+)(?:\.(?:0x[0-9a-fA-F]+|\d+)){3}", h):
            parts = [int(p, 16) if p.lower().startswith("0x") else (int(p, 8) if len(p) > 1 and p.startswith("0") else int(p))
                     for p in h.split(".")]
            if all(0 <= x <= 255 for x in parts):
                return ipaddress.ip_address(".".join(map(str, parts)))
    except ValueError:
        return None
    return None


def split_url(url: str) -> tuple[str, str]:
    """(scheme, host) of a URL; a bare host[:port][/path] counts as http."""
    u = url.strip().strip("'\"")
    if "://" not in u:
        u = "http://" + u
    parts = urlsplit(u)
    return parts.scheme.lower(), (parts.hostname or "").lower()


def host_class(host: str) -> str:
    """'loopback', 'private' (RFC 1918, link-local, ...), or 'public'."""
    if host in ("localhost", "localhost.localdomain", "ip6-localhost") or host.endswith(".localhost"):
        return "loopback"
    if host in ("metadata.google.internal", "metadata"):
        return "private"
    ip = parse_ip(host)
    if ip is None:
        return "public"
    if ip.is_loopback or ip.is_unspecified:
        return "loopback"
    if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast:
        return "private"
    return "public"
