"""A real local Ray cluster for tests: a head and worker nodes started with ``ray start`` on loopback,
each in its own temp dir and ports, torn down by process id (never ``ray stop``, which would stop
every Ray instance on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from airisk.testing.openai_server import free_port

# loopback-only test cluster; workers at normal priority (Ray's default nice 15 starves them on a busy machine)
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0"}


def ray_bin() -> str:
    import sys

    return str(Path(sys.executable).with_name("ray"))


def _pids_matching(text: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if text in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def _kill_tree(pid: int) -> None:
    for kid in _children(pid):
        _kill_tree(kid)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalRayCluster:
    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="/tmp/rt")  # short: Ray's socket paths must stay < 108 chars
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **RAY_ENV}
        self.nodes: list[int] = []  # node manager ports of worker nodes

    def _start(self, args: list[str]) -> None:
        res = subprocess.run([ray_bin(), "start", "--node-ip-address=127.0.0.1", f"--temp-dir={self.tmp}",
                              "--object-store-memory=80000000", "--disable-usage-stats",
                              f"--metrics-export-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                              f"--dashboard-agent-grpc-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
                              f"--object-manager-port={free_port()}", *args],
                             env=self.env, capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            raise RuntimeError(f"ray start failed: {res.stderr[-2000:]}")

    def start_head(self) -> None:
        self._start(["--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false",
                     f"--dashboard-port={free_port()}",
                     f"--node-manager-port={free_port()}"])

    def add_node(self, num_cpus: int = 1) -> int:
        nmp = free_port()
        base = 10000 + (nmp % 160) * 62  # below the ephemeral range that free_port() draws from
        self._start([f"--address={self.address}", f"--num-cpus={num_cpus}", f"--node-manager-port={nmp}",
                     f"--min-worker-port={base}", f"--max-worker-port={base + 60}"])
        self.nodes.append(nmp)
        return nmp

    def wait_for_cpus(self, n: int, timeout: float = 120) -> None:
        code = ("import ray,time,sys; ray.init(address=sys.argv[1], logging_level='ERROR'); t=time.time()\n"
                "while ray.cluster_resources().get('CPU',0) != float(sys.argv[2]) and time.time()-t < 100: time.sleep(0.5)\n"
                "print(ray.cluster_resources().get('CPU',0))")
        import sys

        res = subprocess.run([sys.executable, "-c", code, self.address, str(n)], env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        assert res.stdout.strip().endswith(str(float(n))), res.stdout + res.stderr[-1000:]

    def kill_node(self, nmp: int) -> None:
        """SIGKILL a worker node: its raylet and everything under it (its worker processes)."""
        for pid in _pids_matching(f"--node_manager_port={nmp}"):
            _kill_tree(pid)
        self.nodes.remove(nmp)

    def stop(self) -> None:
        for pid in _pids_matching(self.tmp):
            _kill_tree(pid)
        time.sleep(0.5)
        for pid in _pids_matching(self.tmp):
            _kill_tree(pid)
        shutil.rmtree(self.tmp, ignore_errors=True)
