"""The gate's DNS-resolved SSRF check (scopes.network.dns): names that resolve to private, loopback,
link-local or metadata addresses are blocked; answers are cached; a resolver table keeps it
deterministic (no real DNS), and the system resolver is exercised on ``localhost`` only."""

from __future__ import annotations

import socket
import time

import pytest

from airisk.errors import ConfigError
from airisk.guard import Action, ActionGate
from airisk.guard.detectors.dns import system_resolver
from airisk.guard.policy import load_policy

TABLE = {
    "intranet.example.com": ["10.0.0.5"],
    "meta.example.com": ["169.254.169.254"],
    "meta6.example.com": ["fd00:ec2::254"],
    "mapped.example.com": ["::ffff:a9fe:a9fe"],  # IPv4-mapped metadata address
    "sneaky.example.com": ["93.184.216.34", "127.0.0.1"],  # one bad answer is enough
    "public.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "partner.corp-x.com": ["10.1.2.3"],
}


class Table:
    def __init__(self, table=TABLE, delay_s=0.0):
        self.table, self.delay_s, self.asked = dict(table), delay_s, []

    def __call__(self, host):
        self.asked.append(host)
        if self.delay_s:
            time.sleep(self.delay_s)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


def make(resolver, **dns):
    pol = load_policy("builtin:default").model_dump(mode="json", by_alias=True, exclude_none=True)
    pol["scopes"]["network"]["dns"] = {"enabled": True, **dns}
    return ActionGate.from_policy(pol, resolver=resolver)


def fetch(gate, url, tool="http_request", **kw):
    return gate.decide(Action(tool=tool, arguments={"url": url}, role="agent", **kw))


@pytest.mark.parametrize("host,rule", [("intranet.example.com", "scope.net.dns_private"),
                                       ("meta.example.com", "scope.net.deny_host"),
                                       ("meta6.example.com", "scope.net.dns_private"),
                                       ("mapped.example.com", "scope.net.deny_host"),
                                       ("sneaky.example.com", "scope.net.dns_loopback")])
def test_names_resolving_inside_are_blocked(host, rule):
    d = fetch(make(Table()), f"https://{host}/latest/meta-data/")
    assert d.verdict == "BLOCK" and rule in d.rule_ids, d.reasons


def test_public_name_passes_and_code_tools_are_checked_too():
    t = Table()
    g = make(t)
    assert fetch(g, "https://public.example.com/x").verdict == "ALLOW"
    d = g.decide(Action(tool="shell", role="agent", arguments={"command": "curl -s http://intranet.example.com/admin"}))
    assert d.verdict == "BLOCK" and "scope.net.dns_private" in d.rule_ids
    d = g.decide(Action(tool="python", role="agent",
                        arguments={"code": "import requests\nrequests.get('http://meta6.example.com/')"}))
    assert d.verdict == "BLOCK" and "scope.net.dns_private" in d.rule_ids


def test_tools_of_unknown_semantics_get_review_like_textual_checks():
    g = make(Table())
    d = g.decide(Action(tool="calendar", role="agent", arguments={"link": "https://intranet.example.com/x"}))
    assert d.verdict == "REVIEW" and "scope.net.dns_private" in d.rule_ids
    textual = g.decide(Action(tool="calendar", role="agent", arguments={"link": "https://10.0.0.5/x"}))
    assert textual.verdict == "REVIEW"


@pytest.mark.parametrize("url", ["http://0xa9fea9fe/", "http://2852039166/", "http://0251.0376.0251.0376/",
                                 "http://169.254.43518/", "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/",
                                 "http://10.0.0.1.nip.io/"])
def test_address_literals_need_no_lookup(url):
    t = Table()
    d = fetch(make(t), url)
    assert d.verdict == "BLOCK" and t.asked == []


def test_answers_are_cached_and_decisions_see_a_changed_answer_after_the_ttl():
    t = Table()
    g = make(t)
    for _ in range(3):
        assert fetch(g, "https://public.example.com/").verdict == "ALLOW"
    assert t.asked == ["public.example.com"]  # one lookup for three decisions
    t2 = Table({"rebind.example.com": ["93.184.216.34"]})
    g2 = make(t2, cache_ttl_s=0)  # every decision looks again: DNS rebinding is caught
    assert fetch(g2, "https://rebind.example.com/").verdict == "ALLOW"
    t2.table["rebind.example.com"] = ["169.254.169.254"]
    assert fetch(g2, "https://rebind.example.com/").verdict == "BLOCK"  # the decision itself was cached; the answer is not


def test_failures_timeouts_and_allowlist():
    t = Table(delay_s=1.0)
    g = make(t, timeout_s=0.1, on_failure="REVIEW")
    t0 = time.perf_counter()
    d = fetch(g, "https://public.example.com/")
    assert d.verdict == "REVIEW" and "scope.net.dns_unresolved" in d.rule_ids and "0.1s" in d.reasons[0]
    assert time.perf_counter() - t0 < 0.9  # bounded by the timeout, not the resolver
    assert fetch(make(Table()), "https://nx.example.com/").verdict == "ALLOW"  # default: unresolvable = unreachable
    assert fetch(make(Table(), on_failure="BLOCK"), "https://nx.example.com/").verdict == "BLOCK"
    t3 = Table()
    g3 = make(t3, allow_hosts=["*.corp-x.com"])
    assert fetch(g3, "https://partner.corp-x.com/").verdict == "ALLOW" and t3.asked == []


def test_off_by_default_and_loopback_names_opt_in():
    t = Table()
    g = ActionGate.from_policy("builtin:default", resolver=t)
    assert fetch(g, "https://intranet.example.com/").verdict == "ALLOW" and t.asked == []
    assert fetch(make(Table(), allow_loopback=True), "https://sneaky.example.com/").verdict == "ALLOW"
    with pytest.raises(ConfigError, match="timeout_s"):
        make(Table(), timeout_s=0)


def test_system_resolver_on_localhost():
    addrs = system_resolver("localhost")
    assert addrs and all(a in ("127.0.0.1", "::1") or a.startswith("127.") for a in addrs)
