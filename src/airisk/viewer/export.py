"""Export every item of a run, one row per item: ids, hazard, persona, prompt, response, every judgment,
errors and red-team lineage (schema ``airisk.export/1``, documented in docs/viewer.md).

Formats: ``jsonl`` (nested: ``judgments`` is an object keyed by judge id), ``csv`` (flat: one
``judge.<id>.<field>`` column per judge and field; nested values as JSON text) and ``parquet`` (the
flat rows, only when ``pyarrow`` is installed; otherwise a clear error says so).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from airisk.errors import AiriskError
from airisk.store.store import Record, Store

FORMATS = ("jsonl", "csv", "parquet")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
JUDGMENT_FIELDS = ("label", "probability", "refusal", "reason", "categories", "error", "fingerprint")
BASE_COLUMNS = ("run_id", "item_id", "dataset", "hazard", "persona", "locale", "expected", "source_category", "attack",
                "prompt", "messages", "response", "error", "error_kind", "finish_reason", "latency_s", "tool_calls",
                "lineage")


class ExportError(AiriskError):
    pass


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ExportError("parquet export needs pyarrow, which is not installed (pip install pyarrow); "
                              "use --format jsonl or csv") from None
    return fmt


def record_row(run_id: str, rec: Record) -> dict[str, Any]:
    """The nested export row of one record."""
    it, c, md = rec.item, rec.completion, rec.item.metadata or {}
    lineage = None
    if md.get("seed_id") or md.get("lineage"):
        lineage = {"seed_id": md.get("seed_id"), "attack": md.get("attack"), "queries": md.get("queries"),
                   "chain": (md.get("lineage") or {}).get("chain", [])}
    return {
        "run_id": run_id, "item_id": it.id, "dataset": it.dataset, "hazard": it.hazard, "persona": it.persona,
        "locale": it.locale, "expected": it.expected, "source_category": it.source_category,
        "attack": md.get("attack") or md.get("method"), "prompt": it.prompt,
        "messages": [m.model_dump(exclude_none=True) for m in it.messages] if it.messages else None,
        "response": c.text if c else None, "error": c.error if c else None, "error_kind": c.error_kind if c else None,
        "finish_reason": c.finish_reason if c else None, "latency_s": c.latency_s if c else None,
        "tool_calls": c.tool_calls if c else None, "lineage": lineage,
        "judgments": {jid: {"label": j.label, "probability": j.probability, "refusal": j.refusal, "reason": j.reason,
                            "categories": list(j.categories), "error": j.error, "fingerprint": j.judge_fingerprint}
                      for jid, j in sorted(rec.judgments.items())},
    }


def iter_rows(store: Store, run_id: str) -> Iterator[dict[str, Any]]:
    run = store.get_run(run_id)
    for rec in store.records(run.id):
        yield record_row(run.id, rec)


def _flat(row: dict[str, Any], judges: list[str]) -> dict[str, Any]:
    out = {}
    for k in BASE_COLUMNS:
        v = row[k]
        out[k] = json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, (dict, list)) else v
    for jid in judges:
        j = row["judgments"].get(jid) or {}
        for f in JUDGMENT_FIELDS:
            v = j.get(f)
            out[f"judge.{jid}.{f}"] = json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
    return out


def _judges(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({jid for r in rows for jid in r["judgments"]})


def export_bytes(store: Store, run_id: str, fmt: str) -> bytes:
    """The whole export in one format, as bytes (what the viewer's download serves)."""
    check_format(fmt)
    rows = list(iter_rows(store, run_id))
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")
    judges = _judges(rows)
    flat = [_flat(r, judges) for r in rows]
    columns = list(BASE_COLUMNS) + [f"judge.{j}.{f}" for j in judges for f in JUDGMENT_FIELDS]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(flat)
        return buf.getvalue().encode("utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(flat, schema=None) if flat else pa.table({c: pa.array([], pa.string()) for c in columns})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_export(store: Store, run_id: str, fmt: str, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the export to ``out`` (default ``<run id>.<format>``); returns the path and the row count."""
    check_format(fmt)
    run = store.get_run(run_id)
    path = Path(out) if out else Path(f"{run.id}.{fmt}")
    data = export_bytes(store, run.id, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, store.count_items(run.id)
