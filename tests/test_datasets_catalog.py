"""File resolution: data path, cache, verified download from a real local HTTP server, offline errors."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest

from airisk.datasets import catalog
from airisk.datasets.catalog import ChecksumMismatch, register_file, resolve_file
from airisk.errors import ConfigError, DatasetNotFound


@pytest.fixture
def shared_data() -> Path:
    """The shared public data (AIRISK_DATA_PATH's first entry); skip when it is not available."""
    raw = os.environ.get("AIRISK_DATA_PATH", "")
    dirs = [Path(d) for d in raw.split(os.pathsep) if d and (Path(d) / "ailuminate").is_dir()]
    if not dirs:
        pytest.skip("AIRISK_DATA_PATH is unset or has no ailuminate/ folder: shared public data not available")
    return dirs[0]


CONTENT = b"id,prompt\n1,hello\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated data path and cache; downloads allowed; no mirror."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AIRISK_CACHE", str(cache))
    monkeypatch.delenv("AIRISK_DATA_PATH", raising=False)
    monkeypatch.delenv("AIRISK_OFFLINE", raising=False)
    monkeypatch.delenv("AIRISK_DATA_MIRROR", raising=False)
    specs = catalog._file_specs()
    before = dict(specs)
    yield tmp_path
    specs.clear()
    specs.update(before)


@pytest.fixture
def server(tmp_path):
    """A real HTTP server (stdlib http.server in a thread) serving tmp_path/www; records request paths."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            seen.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_data_path_dirs_searched_in_order_before_cache(env, monkeypatch):
    a, b = env / "a", env / "b"
    for d, text in ((a, b"from a"), (b, b"from b")):
        (d / "set").mkdir(parents=True)
    (b / "set" / "f.csv").write_bytes(b"from b")
    cache_copy = Path(os.environ["AIRISK_CACHE"]) / "set" / "f.csv"
    cache_copy.parent.mkdir(parents=True)
    cache_copy.write_bytes(b"from cache")
    monkeypatch.setenv("AIRISK_DATA_PATH", os.pathsep.join([str(a), str(b)]))
    assert resolve_file("set", "f.csv") == b / "set" / "f.csv"
    (a / "set" / "f.csv").write_bytes(b"from a")
    assert resolve_file("set", "f.csv") == a / "set" / "f.csv"
    monkeypatch.setenv("AIRISK_DATA_PATH", "")
    assert resolve_file("set", "f.csv") == cache_copy


def test_download_with_good_checksum_is_cached_and_reused(env, server):
    base, root, seen = server
    (root / "f.csv").write_bytes(CONTENT)
    register_file("dl", "f.csv", sha256=SHA, url=f"{base}/f.csv")
    path = resolve_file("dl", "f.csv")
    assert path == Path(os.environ["AIRISK_CACHE"]) / "dl" / "f.csv"
    assert path.read_bytes() == CONTENT
    assert resolve_file("dl", "f.csv") == path
    assert seen == ["/f.csv"]  # second call served from the cache
    assert not [p for p in path.parent.iterdir() if p.name != "f.csv"]  # no temp files left


def test_bad_checksum_raises_and_leaves_no_cache_file(env, server):
    base, root, _ = server
    (root / "f.csv").write_bytes(CONTENT + b"tampered\n")
    register_file("dl", "f.csv", sha256=SHA, url=f"{base}/f.csv")
    with pytest.raises(ChecksumMismatch, match="checksum mismatch") as e:
        resolve_file("dl", "f.csv")
    assert SHA in str(e.value)
    cache_folder = Path(os.environ["AIRISK_CACHE"]) / "dl"
    assert not cache_folder.exists() or list(cache_folder.iterdir()) == []


def test_corrupt_cache_copy_is_replaced_by_a_verified_download(env, server):
    base, root, seen = server
    (root / "f.csv").write_bytes(CONTENT)
    register_file("dl", "f.csv", sha256=SHA, url=f"{base}/f.csv")
    cached = Path(os.environ["AIRISK_CACHE"]) / "dl" / "f.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"truncated")
    assert resolve_file("dl", "f.csv").read_bytes() == CONTENT
    assert seen == ["/f.csv"]


def test_gzip_source_is_verified_before_and_after_decompression(env, server):
    base, root, _ = server
    gz = gzip.compress(CONTENT)
    (root / "f.jsonl.gz").write_bytes(gz)
    register_file("gz", "f.jsonl", sha256=SHA, url=f"{base}/f.jsonl.gz",
                  url_sha256=hashlib.sha256(gz).hexdigest(), compression="gzip")
    assert resolve_file("gz", "f.jsonl").read_bytes() == CONTENT


def test_mirror_serves_folder_layout(env, server, monkeypatch):
    base, root, seen = server
    (root / "m").mkdir()
    (root / "m" / "f.csv").write_bytes(CONTENT)
    register_file("m", "f.csv", sha256=SHA, url="https://example.invalid/never-used")
    monkeypatch.setenv("AIRISK_DATA_MIRROR", base)
    assert resolve_file("m", "f.csv").read_bytes() == CONTENT
    assert seen == ["/m/f.csv"]


def test_http_404_gives_clear_not_found(env, server):
    base, _, _ = server
    register_file("dl", "missing.csv", sha256=SHA, url=f"{base}/missing.csv")
    with pytest.raises(DatasetNotFound, match="404") as e:
        resolve_file("dl", "missing.csv")
    assert "AIRISK_DATA_PATH=" in str(e.value)


def test_offline_without_copy_says_what_to_set(env, monkeypatch):
    monkeypatch.setenv("AIRISK_OFFLINE", "1")
    with pytest.raises(DatasetNotFound) as e:
        resolve_file("xstest", "xstest_prompts.csv")
    msg = str(e.value)
    assert "xstest/xstest_prompts.csv" in msg and "AIRISK_DATA_PATH=" in msg
    assert "AIRISK_DATA_PATH is not set" in msg and str(Path(os.environ["AIRISK_CACHE"])) in msg


def test_unreachable_host_gives_one_clear_error(env):
    # a port nobody listens on: connection refused, no retries, no traceback spam
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    register_file("dl", "f.csv", sha256=SHA, url=f"http://127.0.0.1:{port}/f.csv")
    with pytest.raises(DatasetNotFound, match="ConnectError"):
        resolve_file("dl", "f.csv")


def test_file_without_url_lists_data_path_dirs(env, monkeypatch):
    monkeypatch.setenv("AIRISK_DATA_PATH", str(env / "nowhere"))
    with pytest.raises(DatasetNotFound) as e:
        resolve_file("jailbreakbench", "artifacts_jailbreaks.jsonl")
    assert str(env / "nowhere" / "jailbreakbench" / "artifacts_jailbreaks.jsonl") in str(e.value)
    assert "no download URL" in str(e.value)


@pytest.mark.parametrize("folder,rel", [("../etc", "passwd"), ("x", "../../etc/passwd"), ("x", "/etc/passwd"), ("", "f")])
def test_path_traversal_rejected(env, folder, rel):
    with pytest.raises(ConfigError):
        resolve_file(folder, rel)


def test_catalog_entries_are_complete():
    entries = catalog.list_datasets()
    names = {e.name for e in entries}
    assert {"ailuminate-demo-en_us", "ailuminate-demo-fr_fr", "xstest", "harmbench", "jbb-harmful",
            "jbb-benign", "strongreject"} <= names
    for e in entries:
        assert e.license and e.version and e.loader
        for f in e.files:
            assert f.sha256 and len(f.sha256) == 64
            assert f.url and f.url.startswith("https://raw.githubusercontent.com/")
            assert len(f.url.split("/")[5]) == 40  # pinned to a commit, not a branch


def test_local_copies_match_catalog_hashes(shared_data):
    """Every pinned hash in the catalog (datasets and extra files) matches the shared copy."""
    pinned = {k: s for k, s in catalog._file_specs().items() if s.sha256}
    assert len(pinned) >= 17
    for (folder, relpath), spec in pinned.items():
        path = shared_data / folder / relpath
        if not path.is_file() and folder not in {e.folder for e in catalog.list_datasets()}:
            continue  # an extra file of a folder this machine does not have
        assert catalog.sha256_file(path) == spec.sha256, f"{folder}/{relpath}"
