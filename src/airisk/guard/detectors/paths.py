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
import unicodedata
from urllib.parse import unquote, urlsplit

_PROC_ROOT = re.compile(r"^/proc/(?:self|\d+|thread-self)/root(?=/|$)")
_PROC_CWD = re.compile(r"^/proc/(?:self|\d+|thread-self)/cwd(?=/|$)")
_HOME_VAR = re.compile(r"^(?:\$HOME|\$\{HOME\})(?=/|$)")


def normalize_path(path: str, *, home: str = "/home/agent", cwd: str = "/workspace") -> str:
    p = path.strip().strip("'\"")
    if p[:7].lower() == "file://":
        # file://HOST/path: a local path whatever the host says (localhost, 127.0.0.1, empty)
        rest = p[7:]
        p = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        p = unquote(p)
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
        h = canonical_host(host)
        if h in self.exact or (self.suffixes and h.endswith(self.suffixes)):
            return True
        ip = parse_ip(h)  # 169.254.43518 is 169.254.169.254: compare canonical forms too
        if ip is not None:
            if str(ip) in self.exact:
                return True
            if any(ip.version == n.version and ip in n for n in self.nets):
                return True
        return False


# Dots that IDNA (UTS #46) maps to "." before DNS: ideographic, fullwidth and halfwidth full stops.
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_NUM = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
# Wildcard-DNS services that answer any name with the address written in it (10.0.0.1.nip.io).
_WILDCARD_DNS = re.compile(r"^(.*?)[.-](?:nip\.io|sslip\.io|xip\.io|localtest\.me|lvh\.me|traefik\.me)$")
_EMBEDDED_V4 = re.compile(r"(?:^|[.-])((?:\d{1,3}[.-]){3}\d{1,3})$")
MAX_HOST = 253 * 4  # longer "hosts" are not hosts; refuse them rather than parse them


def canonical_host(host: str) -> str:
    """The host an HTTP client would look up: IDNA dots and fullwidth forms folded (NFKC),
    lower case, no brackets or trailing dot."""
    h = host.strip().strip("[]")
    if not h.isascii():
        h = unicodedata.normalize("NFKC", h.translate(_IDNA_DOTS)).translate(_IDNA_DOTS)
    return h.lower().rstrip(".")


def _inet_aton(h: str):
    """IPv4 address as glibc ``inet_aton`` (and so ``getaddrinfo``, curl, Python's socket) reads it:
    1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last part fills the remaining
    bytes, so ``10.1`` is 10.0.0.1 and ``169.16689662`` is 169.254.169.254."""
    parts = h.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUM.fullmatch(p) for p in parts):
        return None
    try:
        nums = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if len(p) > 1 and p[0] == "0" else int(p)
                for p in (q if q.lower() != "0x" else "0x0" for q in parts)]
    except ValueError:
        return None
    *head, last = nums
    if any(x > 255 for x in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for x in head:
        value = value * 256 + x
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def parse_ip(host: str):
    """The IP address ``host`` denotes for a resolver, or None when it is a name.

    Covers every literal form getaddrinfo accepts (dotted, short, decimal, octal, hex, IPv6 with
    embedded IPv4) after IDNA folding, and names of wildcard-DNS services (``10.0.0.1.nip.io``).
    """
    h = canonical_host(host)
    if not h or len(h) > MAX_HOST:
        return None
    if ":" in h:
        try:
            ip6 = ipaddress.IPv6Address(h.split("%", 1)[0])
        except ValueError:
            return None
        return ip6.ipv4_mapped or ip6.sixtofour or ip6
    ip = _inet_aton(h)
    if ip is not None:
        return ip
    m = _WILDCARD_DNS.match(h)
    if m:
        e = _EMBEDDED_V4.search(m.group(1))
        if e:
            return _inet_aton(e.group(1).replace("-", "."))
    return None


def split_url(url: str) -> tuple[str, str]:
    """(scheme, host) of a URL; a bare host[:port][/path] counts as http. ``file://`` URLs
    report their host ('' and 'localhost' both mean this machine)."""
    scheme, hosts = url_hosts(url)
    return scheme, hosts[0]


def url_hosts(url: str) -> tuple[str, list[str]]:
    """(scheme, hosts) where hosts are every host a client could connect to for ``url``: URL
    parsers disagree on backslashes (WHATWG/browsers read ``\\`` as ``/``, urllib and curl as part
    of the userinfo), so ``http://169.254.169.254\\@evil.example/`` yields both hosts."""
    u = url.strip().strip("'\"")
    u = re.sub(r"[\t\r\n]", "", u)  # WHATWG drops them anywhere in the URL
    if "://" not in u:
        u = "http://" + u
    parts = urlsplit(u)
    hosts = [canonical_host(parts.hostname or "")]
    if "\\" in u:
        alt = canonical_host(urlsplit(u.replace("\\", "/")).hostname or "")
        if alt not in hosts:
            hosts.append(alt)
    return parts.scheme.lower(), hosts


def host_class(host: str) -> str:
    """'loopback', 'private' (RFC 1918, link-local, ...), or 'public'."""
    host = canonical_host(host)
    if host in ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback") or host.endswith(".localhost"):
        return "loopback"
    if host in ("metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal") or \
            host.endswith((".internal", ".local", ".lan", ".home.arpa", ".intranet", ".corp")):
        return "private"
    ip = parse_ip(host)
    if ip is None:
        return "public"
    if ip.is_loopback:
        return "loopback"
    # not is_global: RFC 1918, link-local, unspecified (0.0.0.0 reaches localhost), CGNAT /
    # shared space 100.64/10 (cloud metadata at 100.100.100.200), benchmarking, reserved, ...
    if not ip.is_global or ip.is_multicast or ip.is_unspecified:
        return "private"
    return "public"
