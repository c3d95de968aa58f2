"""CLI start-up time, old layout vs new: ``airisk --help`` and sub-command ``--help``.

The old code is the last commit before the CLI became the lazy ``airisk/cli/`` package (override
with ``--old-rev``); it is extracted with ``git archive`` into a temporary folder (nothing in the
repository changes) and run with the same interpreter and installed dependencies, first on
``PYTHONPATH``. For each command: median of N wall times, median CPU time (user+sys of the child),
and the cumulative ``python -X importtime`` of ``import airisk.cli``.

    python benchmarks/cli_startup.py            # N=10
    python benchmarks/cli_startup.py -n 20 --old-rev main

Wall time depends on machine load (CPU time much less): read both, and compare old and new from
the same run only.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_REV = "c1510fc"  # last commit with the CLI spread over <package>/cli.py modules, imported eagerly
COMMANDS = (["--help"], ["run", "--help"], ["gate", "--help"], ["judge", "card", "show", "--help"],
            ["guard", "serve", "--help"])


def extract(rev: str, dest: Path) -> Path:
    """``src/`` of ``rev`` into ``dest`` (via git archive: no worktree, no index change)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, child CPU seconds, exit code) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    rc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), rc


def import_time_ms(env: dict[str, str]) -> float:
    """Cumulative microseconds -> ms of ``import airisk.cli`` from ``python -X importtime``."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import airisk.cli"], env=env,
                       capture_output=True, text=True)
    for line in r.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "airisk.cli":
            return int(parts[1]) / 1000
    raise RuntimeError(f"airisk.cli not in importtime output:\n{r.stderr[-2000:]}")


def heavy_modules(env: dict[str, str], args: list[str]) -> list[str]:
    """Heavy top-level packages imported while printing help."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "airisk.cli", *args], env=env,
                       capture_output=True, text=True)
    heavy = {"torch", "scipy", "numpy", "sqlalchemy", "openai", "sklearn", "transformers", "fastapi", "rich",
             "pydantic", "httpx", "yaml"}
    seen = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    return sorted(seen & heavy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10, help="runs per command (median reported)")
    ap.add_argument("--old-rev", default=OLD_REV, help="git revision of the old layout")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old_src = extract(args.old_rev, Path(tmp))
        envs = {}
        for name, src in (("old", old_src), ("new", ROOT / "src")):
            env = dict(os.environ)
            env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
            envs[name] = env
        print(f"interpreter {sys.executable}; old = {args.old_rev}, new = working tree; median of {args.n} runs; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for name, env in envs.items():
            print(f"  {name}: python -X importtime -c 'import airisk.cli': {import_time_ms(env):.0f} ms cumulative")
        print(f"{'command':<34} {'old wall':>9} {'new wall':>9} {'old cpu':>8} {'new cpu':>8}  heavy imports (old -> new)")
        for cmd in COMMANDS:
            row = {}
            for name, env in envs.items():
                # interleave nothing: each side's runs back to back, after one warm-up run (disk cache)
                timed([sys.executable, "-m", "airisk.cli", *cmd], env)
                runs = [timed([sys.executable, "-m", "airisk.cli", *cmd], env) for _ in range(args.n)]
                bad = [rc for _, _, rc in runs if rc != 0]
                if bad:
                    raise SystemExit(f"{name}: airisk {' '.join(cmd)} exited {bad[0]}")
                row[name] = (statistics.median(w for w, _, _ in runs), statistics.median(c for _, c, _ in runs))
            heavy = f"{','.join(heavy_modules(envs['old'], cmd)) or '-'} -> {','.join(heavy_modules(envs['new'], cmd)) or '-'}"
            print(f"airisk {' '.join(cmd):<27} {row['old'][0]:>8.2f}s {row['new'][0]:>8.2f}s "
                  f"{row['old'][1]:>7.2f}s {row['new'][1]:>7.2f}s  {heavy}")


if __name__ == "__main__":
    main()
