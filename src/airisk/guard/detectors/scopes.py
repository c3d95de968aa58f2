"""Compiled resource scopes and the finding sink the detectors report into.

Detectors (shell, Python, SQL, HTTP) all end up asking the same questions: may this path be
read / written, may this host be reached, may this table be touched. ``ScopeChecker`` answers them
from precompiled glob and host sets, and ``Findings`` collects the rules that matched.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field

from airisk.guard.actions import Finding
from airisk.guard.detectors.dns import DNS_MARK
from airisk.guard.detectors.paths import GlobSet, HostSet, canonical_host, host_class, normalize_path, parse_ip, url_hosts
from airisk.guard.policy import Policy


_HARMLESS_DEV = frozenset({"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/stdin", "/dev/stdout",
                           "/dev/stderr", "/dev/tty"})


class CheckTimeout(Exception):
    """A check ran past its deadline; the gate turns this into its fail-closed verdict."""


class WorkLimit(CheckTimeout):
    """A check would do more work than its budget allows (characters analysed, decoded, folded)."""


# Characters the detectors may analyse for one decision, nested decodes and re-analyses included.
# Big enough for any real script at max_script_chars several times over, small enough that a
# payload which multiplies itself (eval of eval, decode of decode) stops in milliseconds.
WORK_BUDGET = 1_000_000


@dataclass(slots=True)
class Findings:
    items: list[Finding] = field(default_factory=list)
    deadline: float = float("inf")
    _seen: set = field(default_factory=set)
    work: list = field(default_factory=lambda: [WORK_BUDGET])  # shared by the sinks of one decision

    def spend(self, n: int) -> None:
        """Charge ``n`` units of work (characters) to the decision; raise when the budget is gone."""
        self.work[0] -= n
        if self.work[0] < 0:
            raise WorkLimit(f"analysis would exceed its work budget ({WORK_BUDGET} characters)")
        if time.perf_counter() > self.deadline:
            raise CheckTimeout("check exceeded its time budget")

    def add(self, rule_id: str, verdict: str, reason: str) -> None:
        key = (rule_id, reason)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(Finding(rule_id, verdict, reason))  # type: ignore[arg-type]

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise CheckTimeout("check exceeded its time budget")


class ScopeChecker:
    """Filesystem, network and database scopes of one policy, compiled once."""

    def __init__(self, policy: Policy):
        fs = policy.scopes.filesystem
        self.home, self.cwd = fs.home, fs.cwd
        self.read_allow = GlobSet(fs.read.allow, home=fs.home)
        self.read_deny = GlobSet(fs.read.deny, home=fs.home)
        self.read_review = GlobSet(fs.read.review, home=fs.home)
        self.read_verdict = fs.read.verdict
        self.write_allow = GlobSet(fs.write.allow, home=fs.home)
        self.write_deny = GlobSet(fs.write.deny, home=fs.home)
        self.write_review = GlobSet(fs.write.review, home=fs.home)
        self.write_verdict = fs.write.verdict
        self.critical = GlobSet(fs.critical, home=fs.home)
        self.root_depth = fs.root_depth
        net = policy.scopes.network
        self.net = net
        self.allow_hosts = HostSet(net.allow_hosts)
        self.deny_hosts = HostSet(net.deny_hosts)
        self.code_hosts = HostSet(net.code_allow_hosts)
        self.schemes = frozenset(s.lower() for s in net.schemes)
        self.dns_on = net.dns.enabled
        self.dns_allow = HostSet(net.dns.allow_hosts)
        db = policy.scopes.database
        self.db = db
        self.allow_tables = GlobSet([t.lower() for t in db.allow_tables], expand_paths=False)
        self.deny_tables = GlobSet([t.lower() for t in db.deny_tables], expand_paths=False)

    # -- filesystem --
    def norm(self, path: str, cwd: str | None = None, home: str | None = None) -> str:
        return normalize_path(path, home=home or self.home, cwd=cwd or self.cwd)

    def check_read(self, path: str, out: Findings, *, cwd: str | None = None, rule: str = "scope.fs.read",
                   what: str = "read") -> bool:
        p = self.norm(path, cwd)
        if p in _HARMLESS_DEV:
            return True
        if self.read_deny.match(p) or (self.read_allow and not self.read_allow.match(p)):
            why = "a protected path" if self.read_deny.match(p) else "outside the readable scope"
            out.add(rule, self.read_verdict, f"{what} of {p} ({why})")
            return False
        if self.read_review.match(p):
            out.add(rule + "_review", "REVIEW", f"{what} of {p} (system area: needs approval)")
            return False
        return True

    def check_write(self, path: str, out: Findings, *, cwd: str | None = None, rule: str = "scope.fs.write",
                    what: str = "write") -> bool:
        p = self.norm(path, cwd)
        if p in ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"):
            return True
        if self.write_deny.match(p) or (self.write_allow and not self.write_allow.match(p)):
            why = "a protected path" if self.write_deny.match(p) else "outside the writable scope"
            out.add(rule, self.write_verdict, f"{what} to {p} ({why})")
            return False
        if self.write_review.match(p):
            out.add(rule + "_review", "REVIEW", f"{what} to {p} (needs approval)")
            return False
        return True

    def is_critical(self, path: str, cwd: str | None = None) -> bool:
        p = self.norm(path, cwd)
        if p == "/" or self.critical.match(p) or p == self.home:
            return True
        depth = len([s for s in p.split("/") if s])
        if depth <= self.root_depth:
            return True
        # "/*", "/home/*", "~/*": a wildcard directly under a critical directory
        if "*" in p and self.is_critical(posixpath.dirname(p) or "/"):
            return True
        return False

    # -- network --
    def check_url(self, url: str, out: Findings, *, from_code: bool = False, what: str = "request") -> bool:
        try:
            scheme, hosts = url_hosts(url)
            if any(len(h) > 253 for h in hosts):
                raise ValueError("host name longer than 253 characters")
        except ValueError:
            out.add("scope.net.bad_url", self.net.verdict, f"{what}: cannot parse URL {url[:80]!r}")
            return False
        if scheme == "file":  # a local read whatever host the URL names
            self.check_read(url, out, what=f"{what} (file URL)")
            hosts = ["" if h in ("", "localhost") else h for h in hosts]
        ok = True
        for host in hosts:  # every host some client would connect to must pass
            ok = self.check_host(host, out, scheme=scheme, from_code=from_code, what=what) and ok
        return ok

    def check_host(self, host: str, out: Findings, *, scheme: str | None = None, from_code: bool = False,
                   what: str = "connection") -> bool:
        ok = True
        if scheme and self.schemes and scheme not in self.schemes and scheme not in ("tcp", "udp"):
            out.add("scope.net.scheme", self.net.verdict, f"{what} uses scheme '{scheme}', not allowed")
            ok = False
        if not host:
            return ok
        host = canonical_host(host)
        if self.deny_hosts.match(host):
            out.add("scope.net.deny_host", self.net.verdict, f"{what} to denied host {host}")
            return False
        cls = host_class(host)
        if cls == "private" and not self.net.allow_private:
            out.add("scope.net.private", self.net.verdict, f"{what} to private/link-local address {host} (SSRF risk)")
            return False
        if cls == "loopback" and not self.net.allow_loopback:
            out.add("scope.net.loopback", self.net.verdict, f"{what} to loopback {host}")
            return False
        if cls == "public" and self.dns_on and parse_ip(host) is None and not self.dns_allow.match(host):
            # a name: the gate resolves it after the (cacheable) static checks; see detectors.dns
            out.add(f"{DNS_MARK}{host}", "ALLOW", what)
        if cls == "public" and self.allow_hosts and not self.allow_hosts.match(host):
            out.add("scope.net.not_allowed", self.net.verdict, f"{what} to {host}, not in the egress allowlist")
            return False
        if from_code and cls == "public" and self.code_hosts and not self.code_hosts.match(host):
            out.add("scope.net.code_egress", self.net.code_egress_verdict,
                    f"code run by the agent contacts {host}, not in the code egress allowlist")
            return False
        return ok

    # -- database --
    def check_table(self, table: str, out: Findings) -> bool:
        t = table.lower().strip('`"[]')
        short = t.rsplit(".", 1)[-1]
        if self.deny_tables.match(t) or self.deny_tables.match(short):
            out.add("scope.db.deny_table", self.db.verdict, f"query touches protected table {table}")
            return False
        if self.allow_tables and not (self.allow_tables.match(t) or self.allow_tables.match(short)):
            out.add("scope.db.not_allowed", self.db.verdict, f"query touches table {table}, outside the allowed tables")
            return False
        return True
