"""Worst-case decision time and memory of the guard service for adversarial payloads up to the body limit.

Starts the real app (uvicorn on loopback, default policy, SQLite audit) with each gate isolation
mode, sends each adversarial request while a second client polls ``/healthz``, and prints per
payload: the answer's status and verdict, the request's wall time, the slowest ``/healthz`` answer
meanwhile, and the service process's peak RSS growth. ``gate_deadline_s`` is the configured bound.

    python benchmarks/guard_adversarial.py [--isolation process,thread] [--deadline 2.0]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time

import httpx

from airisk.guard.content import ContentGuard
from airisk.guard.service import create_app
from airisk.testing.openai_server import ServerThread
from airisk.testing.scorers import MarkerScorer

LIMIT = 1_000_000


def payloads() -> dict[str, tuple[str, bytes]]:
    dbl = lambda n: "import os\na='x'\n" + "a=a+a\n" * n + "os.system(a)\n"  # noqa: E731
    act = lambda tool, args: json.dumps({"tool": tool, "arguments": args}).encode()  # noqa: E731
    big_shell = "echo " + " ".join(f"$(echo {i}|base64 -d)" for i in range(LIMIT // 40))
    return {
        "python 24 doublings (issue)": ("/v1/guard/action", act("python", {"code": dbl(24)})),
        "python 30 doublings": ("/v1/guard/action", act("python", {"code": dbl(30)})),
        "shell ~1MB of substitutions": ("/v1/guard/action", act("shell", {"command": big_shell[: LIMIT - 200]})),
        "sql ~1MB of nested parens": ("/v1/guard/action", act("sql", {"query": "SELECT " + "(" * 300_000 + "1" + ")" * 300_000})),
        "JSON nested 999 levels": ("/v1/guard/action", b'{"tool":"shell","arguments":{"a":' + b"[" * 999 + b"]" * 999 + b"}}"),
        "chat ~1MB prompt, base64": ("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "aGVsbG8g" * 120_000}]}).encode()),
        "chat 4000 messages": ("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "hi " * 20}] * 4000}).encode()),
    }


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(isolation: str, deadline: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        app = create_app({"require_auth": False, "audit_url": f"sqlite:///{d}/a.db", "gate_isolation": isolation,
                          "gate_deadline_s": deadline, "max_body_bytes": LIMIT, "content_deadline_s": 10},
                         content_guard=ContentGuard(scorer=MarkerScorer()))
        srv = ServerThread(app).start()
        base = f"http://127.0.0.1:{srv.port}"
        try:
            with httpx.Client(base_url=base, timeout=120) as c:
                while c.get("/readyz").status_code != 200:
                    time.sleep(0.05)
                print(f"gate_isolation={isolation} gate_deadline_s={deadline:g} body limit {LIMIT} bytes")
                print(f"  {'payload':<30} {'bytes':>8} {'status':>6} {'verdict':<8} {'wall s':>7} {'healthz max s':>13} {'peak RSS +MB':>12}")
                for name, (path, body) in payloads().items():
                    stop, worst = threading.Event(), [0.0]

                    def poll():
                        with httpx.Client(base_url=base, timeout=60) as p:
                            while not stop.is_set():
                                t = time.perf_counter()
                                p.get("/healthz")
                                worst[0] = max(worst[0], time.perf_counter() - t)
                                time.sleep(0.01)

                    th = threading.Thread(target=poll)
                    th.start()
                    before = rss_mb()
                    t = time.perf_counter()
                    r = c.post(path, content=body, headers={"content-type": "application/json"})
                    wall = time.perf_counter() - t
                    stop.set()
                    th.join()
                    try:
                        js = r.json()
                        verdict = js.get("verdict") or (js.get("airisk_guard") or {}).get("verdict") or \
                            ("ALLOW" if (js.get("airisk_guard") or {}).get("blocked") is False else js.get("error", {}).get("code", "?"))
                    except ValueError:
                        verdict = "?"
                    print(f"  {name:<30} {len(body):>8} {r.status_code:>6} {str(verdict)[:8]:<8} {wall:>7.2f} {worst[0]:>13.3f} "
                          f"{rss_mb() - before:>12.0f}")
        finally:
            srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isolation", default="process,thread")
    ap.add_argument("--deadline", type=float, default=2.0)
    a = ap.parse_args()
    for iso in a.isolation.split(","):
        run(iso, a.deadline)


if __name__ == "__main__":
    main()
