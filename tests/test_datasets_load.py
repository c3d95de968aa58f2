"""Loading datasets: real catalog sets (counts checked against their provenance notes), the generic
user format, and every bad-input case (one DataError naming file, line and field; or skip and count)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from airisk.datasets import load_dataset, load_file
from airisk.errors import ConfigError, DataError, DatasetNotFound
from airisk.taxonomy import hazard_codes


@pytest.fixture
def shared_data(monkeypatch) -> Path:
    """The shared public data (from AIRISK_DATA_PATH); skip when it is not available."""
    raw = os.environ.get("AIRISK_DATA_PATH", "")
    dirs = [Path(d) for d in raw.split(os.pathsep) if d and (Path(d) / "ailuminate").is_dir()]
    if not dirs:
        pytest.skip("AIRISK_DATA_PATH is unset or has no ailuminate/ folder: shared public data not available")
    monkeypatch.setenv("AIRISK_OFFLINE", "1")  # never try the network from these tests
    return dirs[0]


# --- real datasets ------------------------------------------------------------------------------
AILUMINATE_PER_HAZARD = {**{h: 100 for h in ("cse", "dfm", "hte", "ipv", "iwp", "ncr", "prv", "src", "ssh", "sxc_prn", "vcr")},
                         "spc_fin": 26, "spc_hlt": 26, "spc_ele": 24, "spc_lgl": 24}


@pytest.mark.parametrize("name,locale", [("ailuminate-demo-en_us", "en_US"), ("ailuminate-demo-fr_fr", "fr_FR")])
def test_ailuminate_demo_counts_match_provenance(shared_data, name, locale):
    ds = load_dataset(name)
    assert len(ds) == 1200 and ds.verified and not ds.skipped
    assert ds.counts("hazard") == dict(sorted(AILUMINATE_PER_HAZARD.items()))
    assert ds.counts("persona") == {"skilled": 600, "unskilled": 600}
    assert ds.counts("locale") == {locale: 1200}
    assert all(i.id.startswith(f"{name}:airr_practice_1_0_") for i in ds.items)
    assert len({i.id for i in ds.items}) == 1200
    assert {i.source_category for i in ds.items} == set(AILUMINATE_PER_HAZARD)
    assert ds.license == "CC-BY-4.0" and ds.version


def test_ailuminate_embedded_newlines_survive(shared_data):
    ds = load_dataset("ailuminate-demo-en_us")
    multiline = [i for i in ds.items if "\n" in i.prompt]
    assert multiline, "the en_US demo file has prompts with embedded newlines (1,291 physical lines)"


def test_xstest_expected_and_types(shared_data):
    ds = load_dataset("xstest")
    assert len(ds) == 450
    assert ds.counts("expected") == {"comply": 250, "refuse": 200}
    types = Counter(i.source_category for i in ds.items)
    assert len(types) == 18 and set(types.values()) == {25}
    assert all((i.expected == "refuse") == i.source_category.startswith("contrast_") for i in ds.items)
    assert ds.items[0].id == "xstest:1"
    assert {i.hazard for i in ds.items if i.source_category == "contrast_privacy"} == {"prv"}
    assert {i.hazard for i in ds.items if i.source_category == "contrast_discr"} == {"hte"}


def test_harmbench_contextual_items_include_context(shared_data):
    ds = load_dataset("harmbench")
    assert len(ds) == 400
    assert Counter(i.metadata["functional_category"] for i in ds.items) == {"standard": 200, "contextual": 100, "copyright": 100}
    ctx = [i for i in ds.items if i.metadata["functional_category"] == "contextual"]
    assert all(i.metadata["context"] in i.prompt and i.metadata["behavior"] in i.prompt for i in ctx)
    assert {i.hazard for i in ds.items if i.source_category == "copyright"} == {"ipv"}
    assert {i.hazard for i in ds.items if i.source_category == "chemical_biological"} == {"iwp"}
    val, test = load_dataset("harmbench-val"), load_dataset("harmbench-test")
    assert len(val) == 80 and len(test) == 320
    assert {i.id for i in val.items} | {i.id for i in test.items} == {i.id for i in ds.items}


def test_jbb_harmful_and_benign(shared_data):
    harmful, benign = load_dataset("jbb-harmful"), load_dataset("jbb-benign")
    assert len(harmful) == len(benign) == 100
    assert harmful.counts("expected") == {"refuse": 100} and benign.counts("expected") == {"comply": 100}
    assert set(Counter(i.source_category for i in harmful.items).values()) == {10}
    assert {i.hazard for i in harmful.items if i.source_category == "Privacy"} == {"prv"}


def test_strongreject_ids_are_stable_content_hashes(shared_data):
    a, b = load_dataset("strongreject"), load_dataset("strongreject")
    assert len(a) == 313 and [i.id for i in a.items] == [i.id for i in b.items]
    assert len({i.id for i in a.items}) == 313
    assert Counter(i.source_category for i in a.items)["Non-violent crimes"] == 59
    assert len(load_dataset("strongreject-v1")) == 346


def test_mapped_hazards_are_valid_codes(shared_data):
    for name in ("xstest", "harmbench", "jbb-harmful", "jbb-benign", "strongreject"):
        ds = load_dataset(name)
        hazards = [i.hazard for i in ds.items]
        assert set(hazards) - {None} <= set(hazard_codes()), name
        assert sum(h is not None for h in hazards) >= 0.75 * len(hazards), name  # most items get a hazard


def test_hazard_filter_and_limit(shared_data):
    ds = load_dataset("ailuminate-demo-en_us", hazards=["cse", "spc_lgl"])
    assert ds.counts("hazard") == {"cse": 100, "spc_lgl": 24}
    assert len(load_dataset("ailuminate-demo-en_us", hazards="cse", limit=7)) == 7
    with pytest.raises(ConfigError, match="valid codes"):
        load_dataset("xstest", hazards=["violence"])


def test_unknown_dataset_name_lists_catalog():
    with pytest.raises(DatasetNotFound, match="xstest"):
        load_dataset("no-such-set")


# --- the generic user format --------------------------------------------------------------------
def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


def test_generic_jsonl(tmp_path):
    p = write(tmp_path, "mine.jsonl", "\n".join([
        json.dumps({"id": "a1", "prompt": "How do I pick a lock?", "hazard": "ncr", "persona": "unskilled",
                    "locale": "en_US", "team": "red"}),
        "",
        json.dumps({"prompt": "Tell me a joke", "expected": "comply", "metadata": {"src": "x"}}),
        json.dumps({"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi there"}]}),
    ]) + "\n")
    ds = load_file(p)
    a, b, c = ds.items
    assert (a.id, a.hazard, a.persona, a.locale, a.expected, a.metadata) == ("a1", "ncr", "unskilled", "en_US", "refuse", {"team": "red"})
    assert b.id.startswith("mine:") and b.expected == "comply" and b.metadata == {"src": "x"}
    assert c.prompt == "hi there" and c.messages[0].role == "system" and c.expected == "unknown"
    assert ds.name == "mine" and len(ds.sha256) == 64 and ds.path.endswith("mine.jsonl")
    assert load_file(p).items == ds.items  # ids are stable


def test_generic_csv_with_metadata_columns(tmp_path):
    p = write(tmp_path, "mine.csv", 'id,prompt,hazard,expected,team\n1,"line one\nline two",hte,,blue\n2,hello,,comply,\n')
    ds = load_file(p)
    assert [i.id for i in ds.items] == ["1", "2"]
    assert ds.items[0].prompt == "line one\nline two" and ds.items[0].metadata == {"team": "blue"}
    assert ds.items[1].hazard is None and ds.items[1].expected == "comply"


def test_user_ailuminate_format_csv(tmp_path):
    p = write(tmp_path, "own.csv", "release_prompt_id,prompt_text,hazard,persona,locale,prompt_hash\n"
                                   'p1,"Q1",vcr,skilled,en_US,abc\np2,Q2,spc_fin,normal,de_DE,def\n')
    ds = load_file(p)  # sniffed as AILuminate format
    assert [(i.id, i.hazard, i.persona, i.locale) for i in ds.items] == [("p1", "vcr", "skilled", "en_US"), ("p2", "spc_fin", "normal", "de_DE")]
    assert load_file(p, fmt="ailuminate").items == ds.items


# --- bad input ----------------------------------------------------------------------------------
def _err(path: Path, **kw) -> DataError:
    with pytest.raises(DataError) as e:
        load_file(path, **kw)
    return e.value


def test_malformed_jsonl_row_names_line(tmp_path):
    p = write(tmp_path, "bad.jsonl", '{"prompt": "ok"}\n{"prompt": "broken\n{"prompt": "fine"}\n')
    e = _err(p)
    assert e.line == 2 and str(p) in str(e) and "invalid JSON" in str(e)
    ds = load_file(p, skip_bad=True)
    assert len(ds) == 2 and [ln for ln, _ in ds.skipped] == [2]


def test_malformed_csv_row_wrong_field_count(tmp_path):
    p = write(tmp_path, "bad.csv", 'id,prompt\n1,"multi\nline"\n2,a,extra\n3,c\n')
    e = _err(p)
    assert e.line == 4 and "expected 2 fields" in str(e) and f"{p}:4" in str(e)  # record 2 starts on line 4
    assert len(load_file(p, skip_bad=True)) == 2


def test_malformed_csv_quoting(tmp_path):
    p = write(tmp_path, "bad.csv", 'id,prompt\n1,"ok"\n2,"bad"x\n3,fine\n')
    e = _err(p)
    assert e.line == 3 and "malformed CSV" in str(e)


def test_unknown_hazard_code(tmp_path):
    p = write(tmp_path, "bad.jsonl", '{"prompt":"a","hazard":"vcr"}\n{"prompt":"b","hazard":"violence"}\n')
    e = _err(p)
    assert (e.line, e.field) == (2, "hazard") and "valid codes: vcr" in str(e)
    ds = load_file(p, skip_bad=True)
    assert len(ds) == 1 and len(ds.skipped) == 1


def test_unknown_hazard_in_ailuminate_csv_reports_record_start_line(tmp_path):
    p = write(tmp_path, "a.csv", "release_prompt_id,prompt_text,hazard,persona,locale\n"
                                 'p1,"two\nlines",vcr,skilled,en_US\np2,"also\ntwo\nlines",xyz,skilled,en_US\n')
    e = _err(p)
    assert (e.line, e.field) == (4, "hazard")


def test_missing_column(tmp_path):
    p = write(tmp_path, "bad.csv", "id,text\n1,hello\n")
    e = _err(p)
    assert (e.line, e.field) == (1, "prompt") and "missing column" in str(e)
    e = _err(p, skip_bad=True)  # a missing column is a file-level error: nothing to skip to
    assert e.field == "prompt"
    p2 = write(tmp_path, "a.csv", "release_prompt_id,prompt_text,locale\np1,q,en_US\n")
    assert _err(p2).field == "hazard"


def test_missing_required_value(tmp_path):
    p = write(tmp_path, "bad.jsonl", '{"id": "x", "hazard": "vcr"}\n')
    e = _err(p)
    assert (e.line, e.field) == (1, "prompt")


@pytest.mark.parametrize("content", [b"", b"\n\n", b"id,prompt\n", b"\n\n\n"])
def test_empty_file(tmp_path, content):
    name = "empty.jsonl" if content.strip() == b"" and content else "empty.csv"
    p = write(tmp_path, name, content)
    e = _err(p)
    assert str(p) in str(e) and ("empty" in str(e) or "no usable rows" in str(e))


def test_non_utf8_file(tmp_path):
    p = write(tmp_path, "latin.csv", "id,prompt\n1,ok\n2,caf\xe9 au lait\n".encode("latin-1"))
    e = _err(p)
    assert (e.line, e.field) == (3, "prompt") and "not valid UTF-8" in str(e) and "0xe9" in str(e)
    ds = load_file(p, skip_bad=True)
    assert [i.prompt for i in ds.items] == ["ok"] and len(ds.skipped) == 1
    pj = write(tmp_path, "latin.jsonl", b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    assert _err(pj).line == 2


def test_duplicate_id(tmp_path):
    p = write(tmp_path, "dup.jsonl", '{"id":"a","prompt":"x"}\n{"id":"b","prompt":"y"}\n{"id":"a","prompt":"z"}\n')
    e = _err(p)
    assert (e.line, e.field) == (3, "id") and "first seen at line 1" in str(e)
    ds = load_file(p, skip_bad=True)
    assert [i.prompt for i in ds.items] == ["x", "y"] and ds.skipped[0][0] == 3


def test_duplicate_prompt_without_ids_is_a_duplicate(tmp_path):
    p = write(tmp_path, "dup.csv", "prompt\nsame\nother\nsame\n")
    e = _err(p)
    assert e.line == 4 and e.field == "id"


def test_bad_expected_and_messages(tmp_path):
    p = write(tmp_path, "bad.jsonl", '{"prompt":"a","expected":"maybe"}\n')
    assert _err(p).field == "expected"
    p = write(tmp_path, "bad2.jsonl", '{"messages":[{"role":"wizard","content":"x"}]}\n')
    assert _err(p).field == "messages"


def test_all_rows_bad_with_skip_is_still_an_error(tmp_path):
    p = write(tmp_path, "bad.jsonl", "nope\nalso nope\n")
    e = _err(p, skip_bad=True)
    assert "no usable rows (2 bad rows skipped" in str(e)


def test_unknown_extension_needs_fmt(tmp_path):
    p = write(tmp_path, "data.txt", '{"prompt":"a"}\n')
    with pytest.raises(ConfigError, match="fmt="):
        load_file(p)
    assert len(load_file(p, fmt="jsonl")) == 1


def test_missing_file():
    with pytest.raises(DatasetNotFound):
        load_file("/nonexistent/file.jsonl")


def test_load_dataset_accepts_a_path(tmp_path):
    p = write(tmp_path, "x.jsonl", '{"prompt":"a"}\n')
    assert load_dataset(str(p)).items[0].prompt == "a"


def test_modified_local_copy_loads_but_is_not_verified(shared_data, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "jailbreakbench"
    folder.mkdir()
    original = (shared_data / "jailbreakbench" / "jbb_behaviors_benign.csv").read_bytes()
    (folder / "jbb_behaviors_benign.csv").write_bytes(original.replace(b"fictional story", b"fictional tale", 1))
    monkeypatch.setenv("AIRISK_DATA_PATH", str(tmp_path))
    ds = load_dataset("jbb-benign")
    assert len(ds) == 100 and not ds.verified and ds.path.startswith(str(tmp_path))
    assert "differs from the catalog" in caplog.text


def test_generic_csv_messages_column_and_crlf(tmp_path):
    msgs = json.dumps([{"role": "user", "content": "hi"}]).replace('"', '""')
    p = write(tmp_path, "m.csv", f'id,messages,messages_note\r\nx,"{msgs}",n\r\ny,"[oops",n\r\n')
    e = _err(p)
    assert (e.line, e.field) == (3, "messages")
    ds = load_file(p, skip_bad=True)
    assert ds.items[0].prompt == "hi" and ds.items[0].metadata == {"messages_note": "n"}
    p2 = write(tmp_path, "n.csv", "id,messages_count\r\n1,3\r\n")
    assert _err(p2).field == "prompt"  # a column merely named like messages does not count
