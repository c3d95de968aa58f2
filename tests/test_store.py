"""The store on SQLite and on a real PostgreSQL server: idempotent writes, joins, caches."""

from __future__ import annotations

import uuid

import pytest

from airisk.engine import run_items
from airisk.store import RunNotFound, Store
from airisk.systems.python_callable import PythonSystem
from airisk.types import Completion, Item, Judgment, Message


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 's.db'}")
    else:
        s = Store(request.getfixturevalue("postgres_url"))
    yield s
    s.close()


def test_run_lifecycle_and_idempotent_writes(store):
    rid = f"run-{uuid.uuid4().hex[:8]}"
    store.create_run(rid, system_name="python", config={"a": 1}, datasets=[{"name": "d", "version": "1"}])
    its = [Item(id=f"{rid}-{i}", prompt=f"p{i}", hazard="vcr", messages=[Message(role="user", content=f"p{i}")])
           for i in range(5)]
    assert store.add_items(rid, its) == 5
    assert store.add_items(rid, its) == 0  # ignored, not duplicated
    assert store.save_responses(rid, [(its[0].id, Completion(text="a")), (its[1].id, Completion(error="boom",
                                                                                               error_kind="http_500"))]) == 2
    assert store.save_responses(rid, [(its[0].id, Completion(text="again"))]) == 0
    assert store.responses(rid)[its[0].id].text == "a"
    assert [i.id for i in store.pending_items(rid)] == [i.id for i in its[2:]]
    assert store.count_responses(rid) == (2, 1)
    assert store.unjudged_item_ids(rid, "j") == {its[0].id}
    store.save_judgments(rid, [(its[0].id, Judgment(label="violating", judge_id="j", categories=["vcr"]))])
    store.save_judgments(rid, [(its[0].id, Judgment(label="non_violating", judge_id="j"))])  # ignored
    assert store.judgments(rid)[its[0].id]["j"].label == "violating"
    store.save_judgments(rid, [(its[0].id, Judgment(label="non_violating", judge_id="j"))], replace=True)
    assert store.judgments(rid)[its[0].id]["j"].label == "non_violating"
    recs = store.records(rid)
    assert len(recs) == 5 and recs[0].completion.text == "a" and recs[0].item.messages[0].content == "p0"
    summary = store.hazard_summary(rid)["vcr"]
    assert summary == {"items": 5, "responses": 1, "errors": 1, "pending": 3, "j:non_violating": 1}
    store.update_run(rid, status="completed", stats={"x": 1})
    store.update_run(rid, stats={"y": 2})
    run = store.get_run(rid[:10])  # unique prefix
    assert run.status == "completed" and run.finished_at is not None and run.stats == {"x": 1, "y": 2}
    assert store.delete_responses(rid) == 1 and store.count_responses(rid) == (1, 0)


def test_unknown_run_is_a_clear_error(store):
    with pytest.raises(RunNotFound, match="runs list"):
        store.get_run("does-not-exist")


def test_cache_roundtrip(store):
    ns = uuid.uuid4().hex[:6]
    store.cache_put_many(ns, {"k1": {"text": "a"}, "k2": {"text": "b"}})
    store.cache_put(ns, "k1", {"text": "overwritten?"})  # first write wins: caches are immutable
    assert store.cache_get(ns, "k1") == {"text": "a"}
    assert store.cache_get_many(ns, ["k1", "k2", "k3"]) == {"k1": {"text": "a"}, "k2": {"text": "b"}}


async def test_engine_runs_on_either_database(store):
    system = PythonSystem(fn=lambda msgs: "ok " + msgs[-1]["content"])
    rid = await run_items(store, system, [Item(id=f"e{uuid.uuid4().hex[:6]}-{i}", prompt=str(i)) for i in range(30)],
                          concurrency=4, progress=False)
    assert store.count_responses(rid) == (30, 0) and store.get_run(rid).status == "completed"


def test_a_sqlite_file_in_a_new_folder_is_created_and_an_unopenable_one_is_named(tmp_path):
    from airisk.errors import ConfigError

    s = Store(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'runs.db'}")
    assert (tmp_path / "new" / "deeper" / "runs.db").is_file() and s.list_runs() == []
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"afile.*cannot create its folder"):
        Store(f"sqlite:///{tmp_path / 'afile' / 'runs.db'}")
    (tmp_path / "adir.db").mkdir()  # a folder where the database file should be
    with pytest.raises(ConfigError, match=r"adir\.db: cannot open it"):
        Store(f"sqlite:///{tmp_path / 'adir.db'}")
