"""Read-only queries behind the viewer, its JSON API, ``airisk export`` and ``runs list --json``.

Everything returns plain JSON-able dicts with documented, stable keys (see docs/viewer.md). Model
output is returned raw: each renderer escapes it for its own format.

Speed: item pages are two queries. The first picks the page's item keys with only the joins its
filters need (an unfiltered deep page walks the ``items.run_id`` index and never touches responses
or judgments); the second fetches the 50 rows' details by key. Search is a case-insensitive
substring match on prompt and response (``LIKE`` on SQLite, ``ILIKE`` on PostgreSQL; ``%``/``_`` in
the query are matched literally).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from airisk.errors import AiriskError
from airisk.reports import headline as hl
from airisk.store.schema import ItemRow, JudgmentRow, ResponseRow
from airisk.store.store import RunInfo, Store
from airisk.viewer.search import SearchIndex, VersionCache, run_version

PER_PAGE = 50
MAX_PER_PAGE = 200
SNIPPET = 160
VERDICTS = ("violating", "non_violating", "error", "unjudged", "pending", "system_error")
RUN_KINDS = ("benchmark", "redteam", "agent", "demo")
LIVE_REFRESH_S = 3.0  # a running run's counts are at most this old (the pages poll every 2 s)
CACHE = VersionCache()  # per-run results, recomputed whenever the run changes (see search.run_version)
SEARCH = SearchIndex()


class BadQuery(AiriskError):
    """A viewer/API query parameter that cannot be used (named in the message)."""


# -- runs -----------------------------------------------------------------------------------------


def primary_judge(run: RunInfo) -> str | None:
    return next((j.get("id") for j in run.judges if j.get("id")), None)


def _counts(store: Store, run_id: str, judge_id: str | None) -> dict[str, int]:
    """Items, responses, errors, pending and the primary judge's labels, from the cached outcome groups."""
    c = {"items": 0, "responses": 0, "errors": 0, "pending": 0, "violating": 0, "non_violating": 0, "judge_errors": 0}
    key = {"violating": "violating", "safe": "non_violating", "judge_error": "judge_errors", "system_error": "errors",
           "pending": "pending"}
    for _h, _e, out, _ek, _rf, n in outcome_groups(store, run_id, judge_id):
        c["items"] += n
        if out in key:
            c[key[out]] += n
    c["responses"] = c["items"] - c["pending"]
    return c


def run_summary(store: Store, run: RunInfo) -> dict[str, Any]:
    """One row of the runs list (schema ``airisk.run-summary/1``)."""
    judge = primary_judge(run)
    c = _counts(store, run.id, judge)
    status = hl.effective_status(store, run)
    if status == "completed" and (c["pending"] or c["errors"]):
        status = "partial"  # finished, but some items have no usable answer
    judged = c["violating"] + c["non_violating"]
    return {
        "id": run.id, "kind": run.kind, "status": status, "stored_status": run.status, "label": run.label,
        "system": run.system_name, "system_spec": hl.system_spec(run),
        "datasets": [d.get("name") for d in run.datasets], "judges": [j.get("id") for j in run.judges if j.get("id")],
        "judge": judge, "counts": c, "violation_rate": c["violating"] / judged if judged else None,
        "created_at": run.created_at.isoformat(), "updated_at": run.updated_at.isoformat() if run.updated_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


SORTS = {"created": lambda r: r["created_at"], "status": lambda r: r["status"], "kind": lambda r: r["kind"],
         "system": lambda r: r["system_spec"]["label"], "items": lambda r: r["counts"]["items"],
         "rate": lambda r: -1 if r["violation_rate"] is None else r["violation_rate"]}


def list_runs(store: Store, *, kind: str | None = None, status: str | None = None, q: str | None = None,
              sort: str = "created", desc: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    if sort not in SORTS:
        raise BadQuery(f"sort must be one of {', '.join(SORTS)}, not '{sort}'")
    rows = [run_summary(store, r) for r in store.list_runs(limit)]
    if kind:
        rows = [r for r in rows if r["kind"] == kind]
    if status:
        rows = [r for r in rows if r["status"] == status]
    if q:
        ql = q.lower()
        rows = [r for r in rows if ql in " ".join(str(x) for x in (r["id"], r["label"], r["system"], r["system_spec"]["label"],
                                                                   *r["datasets"])).lower()]
    return sorted(rows, key=SORTS[sort], reverse=desc)


def run_statuses(store: Store, ids: list[str]) -> list[dict[str, Any]]:
    """Live status and counts of some runs (what the pages poll)."""
    out = []
    for rid in ids[:100]:
        try:
            run = store.get_run(rid)
        except AiriskError:
            continue
        s = run_summary(store, run)
        out.append({"id": s["id"], "status": s["status"], "counts": s["counts"], "violation_rate": s["violation_rate"]})
    return out


# -- one run --------------------------------------------------------------------------------------


def outcome_groups(store: Store, run_id: str, judge: str | None) -> list[tuple]:
    """(hazard, expected, outcome, error kind, refusal, count) over every item of the run: ONE grouped
    join that the run page, the runs list and the counts all read (cached until the run changes).
    Outcomes as in scoring: pending, system_error, unjudged, judge_error, violating, safe."""
    version = run_version(store, run_id)
    if version[0] == "running":  # answers arrive all the time: recount at most every LIVE_REFRESH_S
        version = ("running", int(time.monotonic() // LIVE_REFRESH_S), version[2])
    return CACHE.get((store.url, run_id, "outcomes", judge), version, lambda: _outcome_groups(store, run_id, judge))


def _outcome_groups(store: Store, run_id: str, judge: str | None) -> list[tuple]:
    from sqlalchemy import case

    r, j = aliased(ResponseRow), aliased(JudgmentRow)
    outcome = case(
        (r.pk.is_(None), "pending"), (r.error.is_not(None), "system_error"), (j.pk.is_(None), "unjudged"),
        (j.label == "error", "judge_error"), (j.label == "violating", "violating"), else_="safe")
    cols = (ItemRow.hazard, ItemRow.expected, outcome, r.error_kind, j.refusal)
    stmt = (select(*cols, func.count())
            .outerjoin(r, and_(r.run_id == ItemRow.run_id, r.item_id == ItemRow.item_id))
            .outerjoin(j, and_(j.run_id == ItemRow.run_id, j.item_id == ItemRow.item_id, j.judge_id == (judge or "")))
            .where(ItemRow.run_id == run_id).group_by(*cols))
    with store.session() as s:
        return [tuple(row) for row in s.execute(stmt)]


def run_overview(store: Store, run_id: str, *, min_items: int | None = None) -> dict[str, Any]:
    """``compute_overview``, cached until the run changes; the status and counts are always fresh."""
    run = store.get_run(run_id)
    ov = CACHE.get((store.url, run.id, "overview", min_items), run_version(store, run.id),
                   lambda: compute_overview(store, run.id, min_items=min_items))
    return {**ov, "run": run_summary(store, run)}


def compute_overview(store: Store, run_id: str, *, min_items: int | None = None) -> dict[str, Any]:
    """The run page's numbers, from SQL aggregates so a 100,000-item run opens fast (schema
    ``airisk.run-overview/1``): headline (coverage first), per-hazard rates with Wilson intervals and
    the AILuminate reference, grades, over-refusal, errors by kind, judge card, and the red-team or
    agent section's data for those kinds."""
    from airisk.reports.build import extension_sections
    from airisk.scoring import grading
    from airisk.scoring.hazards import grading_key, hazard_name
    from airisk.scoring.rates import _card_summary, find_card_for

    min_items = grading.DEFAULT_MIN_ITEMS if min_items is None else min_items
    run = store.get_run(run_id)
    summary = run_summary(store, run)
    judge = summary["judge"]
    groups = outcome_groups(store, run.id, judge)
    with store.session() as s:
        locale = s.scalar(select(ItemRow.locale).where(ItemRow.run_id == run.id, ItemRow.locale.is_not(None)).limit(1))
        fp = s.scalar(select(JudgmentRow.judge_fingerprint).where(JudgmentRow.run_id == run.id,
                                                                   JudgmentRow.judge_id == (judge or "")).limit(1))
        # Over-refusal from one refusal judge, as the report picks it: the primary judge if it labels
        # refusals, else the judge with the most refusal labels.
        by_judge: dict[str, dict[str, int]] = {}
        for jid, refusal, n in s.execute(
                select(JudgmentRow.judge_id, JudgmentRow.refusal, func.count())
                .join(ItemRow, and_(ItemRow.run_id == JudgmentRow.run_id, ItemRow.item_id == JudgmentRow.item_id))
                .where(JudgmentRow.run_id == run.id, ItemRow.expected == "comply", JudgmentRow.refusal.is_not(None))
                .group_by(JudgmentRow.judge_id, JudgmentRow.refusal)):
            by_judge.setdefault(jid, {})[refusal] = n
    rjudge = judge if judge in by_judge else max(by_judge, key=lambda k: sum(by_judge[k].values()), default=None)
    refusals = by_judge.get(rjudge, {}) if rjudge else {}
    err_kinds: dict[str | None, int] = {}
    rows: list[tuple] = []
    for hazard, expected, out, ekind, _refusal, n in groups:
        rows.append((hazard, expected, out, n))
        if out == "system_error":
            err_kinds[ekind] = err_kinds.get(ekind, 0) + n
    try:
        ref = grading.get_reference(locale=locale)
    except Exception:  # noqa: BLE001 - no shipped reference for this locale: en_us, as the report does
        ref = grading.get_reference()
    per_h: dict[str, dict[str, int]] = {}
    for hazard, expected, out, n in rows:
        if expected == "comply" or hazard is None:
            continue
        d = per_h.setdefault(hazard, {})
        d[out] = d.get(out, 0) + n
    hazards, by_key = [], {}
    for h in sorted(per_h):
        d = per_h[h]
        v, safe = d.get("violating", 0), d.get("safe", 0)
        errs = d.get("system_error", 0) + d.get("judge_error", 0)
        key = grading_key(h)
        acc = by_key.setdefault(key, [0, 0])
        acc[0] += v + errs
        acc[1] += v + safe + errs
        refsafe = ref.safe_rates.get(key)
        hazards.append({"key": h, "name": hazard_name(h), "items": sum(d.values()), "violating": v, "judged": v + safe,
                        "system_errors": d.get("system_error", 0), "judge_errors": d.get("judge_error", 0),
                        "pending": d.get("pending", 0), "unjudged": d.get("unjudged", 0), **{
                            k: x for k, x in _rate(v, v + safe).items() if k in ("rate", "low", "high")},
                        "grading_key": key, "reference_unsafe_rate": None if refsafe is None else 1 - refsafe})
    grades = []
    for key in sorted(ref.safe_rates):
        u, n = by_key.get(key, (0, 0))
        g = grading.grade(u, n, ref.safe_rates[key], min_items=min_items) if n else None
        grades.append({"key": key, "name": hazard_name(key), "result": g.to_dict() if g else None})
    cov = hl.coverage({"grades": grades, "min_items": min_items})
    tu, tn = sum(v[0] for v in by_key.values()), sum(v[1] for v in by_key.values())
    pooled = grading.grade(tu, tn, ref.benchmark_safe_rate, min_items=min_items) if tn else None
    withheld = None
    if not hl.graded(run.kind):
        withheld = f"{run.kind} runs are not graded against the AILuminate chat-model reference"
    elif not cov["complete"]:
        withheld = cov["why"]
    extensions = extension_sections(store, run.id, run.kind) if run.kind in hl.KIND_HEADLINES else []
    harm_v = sum(h["violating"] for h in hazards)
    harm_n = sum(h["judged"] for h in hazards)
    refused = refusals.get("full_refusal", 0) + refusals.get("partial_refusal", 0)
    return {
        "schema": "airisk.run-overview/1", "run": summary, "graded": hl.graded(run.kind), "datasets": run.datasets,
        "headline": {"coverage": cov, "grade": None if withheld else (pooled.to_dict() if pooled else None),
                     "grade_withheld": withheld, "kind": hl.kind_headline(run.kind, extensions),
                     "overall": _rate(harm_v, harm_n)},
        "hazards": hazards, "grades": grades, "reference": ref.id,
        "over_refusal": _rate(refused, sum(refusals.values())) if refusals else None,
        "errors_by_kind": {k or "(unknown)": v for k, v in sorted(err_kinds.items(), key=lambda kv: str(kv[0]))},
        "judge": judge, "judge_fingerprint": fp, "judge_card": _card_summary(find_card_for(fp)),
        "extensions": [{"title": e["title"], "data": e["data"]} for e in extensions],
    }


# -- items ----------------------------------------------------------------------------------------


@dataclass
class ItemQuery:
    """Filters and page of the items table; every field optional (empty string = no filter)."""

    search: str = ""
    hazard: str = ""
    persona: str = ""
    verdict: str = ""
    refusal: str = ""
    error_kind: str = ""
    attack: str = ""
    pmin: float | None = None
    pmax: float | None = None
    judge: str = ""
    page: int = 1
    per_page: int = PER_PAGE
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "ItemQuery":
        if self.verdict and self.verdict not in VERDICTS:
            raise BadQuery(f"verdict must be one of {', '.join(VERDICTS)}, not '{self.verdict}'")
        for name in ("pmin", "pmax"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 1:
                raise BadQuery(f"{name} must be between 0 and 1, not {v}")
        if self.page < 1:
            raise BadQuery(f"page must be >= 1, not {self.page}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise BadQuery(f"per_page must be between 1 and {MAX_PER_PAGE}, not {self.per_page}")
        return self

    def params(self) -> dict[str, Any]:
        """The non-empty filters, for building links."""
        keys = ("search", "hazard", "persona", "verdict", "refusal", "error_kind", "attack", "pmin", "pmax", "judge")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) not in ("", None)}
        if self.per_page != PER_PAGE:
            out["per_page"] = self.per_page
        return out


def _like(store: Store, col, text: str):
    pat = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if store.engine.dialect.name == "postgresql":
        return col.ilike(pat, escape="\\")
    return col.like(pat, escape="\\")  # SQLite LIKE is case-insensitive for ASCII


def _attack_col():
    return func.coalesce(ItemRow.meta["attack"].as_string(), ItemRow.meta["method"].as_string())


def _filtered_keys(store: Store, run_id: str, judge: str | None, q: ItemQuery):
    """SELECT of item pks matching ``q``, joining responses/judgments only when a filter needs them."""
    if not q.params().keys() - {"judge", "per_page"}:
        return None  # no filter: every item of the run
    r, j = aliased(ResponseRow), aliased(JudgmentRow)
    need_r = bool(q.search or q.error_kind or q.verdict in ("pending", "system_error", "unjudged"))
    need_j = bool(q.verdict or q.refusal or q.pmin is not None or q.pmax is not None)
    # An inner join when the filter needs the row to exist lets the planner start from the small table.
    inner_r = bool(q.error_kind or q.verdict == "system_error")
    inner_j = bool(q.refusal or q.pmin is not None or q.pmax is not None or q.verdict in ("violating", "non_violating", "error"))
    stmt = select(ItemRow.pk).where(ItemRow.run_id == run_id)
    if need_r:
        on = and_(r.run_id == ItemRow.run_id, r.item_id == ItemRow.item_id)
        stmt = stmt.join(r, on) if inner_r else stmt.outerjoin(r, on)
    if need_j:
        on = and_(j.run_id == ItemRow.run_id, j.item_id == ItemRow.item_id, j.judge_id == (judge or ""))
        stmt = stmt.join(j, on) if inner_j else stmt.outerjoin(j, on)
    conds = []
    if q.hazard:
        conds.append(ItemRow.hazard.is_(None) if q.hazard == "(none)" else ItemRow.hazard == q.hazard)
    if q.persona:
        conds.append(ItemRow.persona.is_(None) if q.persona == "(none)" else ItemRow.persona == q.persona)
    if q.attack:
        conds.append(_attack_col() == q.attack)
    if q.search:
        conds.append(or_(_like(store, ItemRow.prompt, q.search), _like(store, r.text, q.search)))
    if q.error_kind:
        conds.append(r.error_kind == q.error_kind)
    if q.refusal:
        conds.append(j.refusal == q.refusal)
    if q.pmin is not None:
        conds.append(j.probability >= q.pmin)
    if q.pmax is not None:
        conds.append(j.probability <= q.pmax)
    verdict_conds = {
        "violating": lambda: j.label == "violating", "non_violating": lambda: j.label == "non_violating",
        "error": lambda: j.label == "error", "pending": lambda: r.pk.is_(None),
        "system_error": lambda: r.error.is_not(None),
        "unjudged": lambda: and_(r.pk.is_not(None), r.error.is_(None), j.pk.is_(None)),
    }
    if q.verdict:
        conds.append(verdict_conds[q.verdict]())
    return stmt.where(*conds)


def _key(q: ItemQuery) -> tuple:
    return tuple(sorted((k, v) for k, v in q.params().items() if k not in ("per_page",)))


def items_page(store: Store, run_id: str, q: ItemQuery) -> dict[str, Any]:
    """One page of a run's items with the chosen judge's verdict (schema ``airisk.items-page/1``)."""
    q.validate()
    run = store.get_run(run_id)
    judge = q.judge or primary_judge(run)
    version = run_version(store, run.id)
    offset = (q.page - 1) * q.per_page
    hits = SEARCH.search(store, run.id, version, q.search) if q.search else None
    with store.session() as s:
        if hits is not None:  # full-text index answered the search; other filters narrow it in SQL
            rest = _filtered_keys(store, run.id, judge, replace(q, search=""))
            if rest is not None:
                allowed = set(CACHE.get((store.url, run.id, "keys", judge, _key(q)), version, lambda: list(s.scalars(rest))))
                hits = [pk for pk in hits if pk in allowed]
            total, pks = len(hits), hits[offset:offset + q.per_page]
        else:
            keys = _filtered_keys(store, run.id, judge, q)
            if keys is None:
                keys = select(ItemRow.pk).where(ItemRow.run_id == run.id)
            total = CACHE.get((store.url, run.id, "count", judge, _key(q)), version,
                              lambda: s.scalar(select(func.count()).select_from(keys.subquery())) or 0)
            pks = list(s.scalars(keys.order_by(ItemRow.pk).limit(q.per_page).offset(offset)))
        rows = _rows_for(s, run.id, judge, pks)
    pages = max(1, -(-total // q.per_page))
    return {"schema": "airisk.items-page/1", "run_id": run.id, "judge": judge, "total": total, "page": q.page,
            "per_page": q.per_page, "pages": pages, "filters": q.params(), "items": rows}


def _rows_for(s, run_id: str, judge: str | None, pks: list[int]) -> list[dict[str, Any]]:
    if not pks:
        return []
    r, j = aliased(ResponseRow), aliased(JudgmentRow)
    stmt = (
        select(ItemRow.pk, ItemRow.item_id, ItemRow.hazard, ItemRow.persona, ItemRow.expected,
               func.substr(ItemRow.prompt, 1, SNIPPET), func.length(ItemRow.prompt), _attack_col(),
               r.pk, func.substr(r.text, 1, SNIPPET), func.length(r.text), r.error_kind,
               j.label, j.probability, j.refusal)
        .outerjoin(r, and_(r.run_id == ItemRow.run_id, r.item_id == ItemRow.item_id))
        .outerjoin(j, and_(j.run_id == ItemRow.run_id, j.item_id == ItemRow.item_id, j.judge_id == (judge or "")))
        .where(ItemRow.pk.in_(pks)).order_by(ItemRow.pk)
    )
    out = []
    for (pk, iid, hazard, persona, expected, prompt, plen, attack, rpk, text, tlen, ekind, label, prob, refusal) in s.execute(stmt):
        verdict = "pending" if rpk is None else "system_error" if ekind or (text is None and label is None) else (label or "unjudged")
        out.append({"item_id": iid, "hazard": hazard, "persona": persona, "expected": expected, "attack": attack,
                    "prompt": prompt + ("…" if (plen or 0) > SNIPPET else ""),
                    "response": None if text is None else text + ("…" if (tlen or 0) > SNIPPET else ""),
                    "error_kind": ekind, "verdict": verdict, "probability": prob, "refusal": refusal})
    return out


def facets(store: Store, run_id: str) -> dict[str, list[str]]:
    """Distinct values offered in the filter drop-downs. Item columns are cached until items are added,
    answer and verdict columns until the run changes, so a running run does not rescan its items."""
    run = store.get_run(run_id)
    version = run_version(store, run.id)
    items = CACHE.get((store.url, run.id, "facets-items"), version[2:3], lambda: _facets(store, run, ITEM_FACETS))
    rest = CACHE.get((store.url, run.id, "facets-rest"), version, lambda: _facets(store, run, ANSWER_FACETS))
    return {**items, **rest, "verdict": list(VERDICTS)}


ITEM_FACETS = {"hazard": (ItemRow.hazard, ItemRow.run_id), "persona": (ItemRow.persona, ItemRow.run_id),
               "attack": (_attack_col, ItemRow.run_id)}
ANSWER_FACETS = {"error_kind": (ResponseRow.error_kind, ResponseRow.run_id),
                 "refusal": (JudgmentRow.refusal, JudgmentRow.run_id), "judge": (JudgmentRow.judge_id, JudgmentRow.run_id)}
KEEP_NONE = ("hazard", "persona", "judge")  # "(none)" is a useful filter value only for these


def _facets(store: Store, run: RunInfo, which: dict[str, tuple]) -> dict[str, list[str]]:
    out = {}
    with store.session() as s:
        for name, (col, run_col) in which.items():
            col = col() if callable(col) and not hasattr(col, "key") else col
            vals = sorted(v if v is not None else "(none)" for v in s.scalars(select(col).where(run_col == run.id).distinct()))
            out[name] = vals if name in KEEP_NONE else [v for v in vals if v != "(none)"]
    return out


# -- one item -------------------------------------------------------------------------------------


def _turns(item, completion) -> list[dict[str, Any]]:
    """The conversation to show: a red-team transcript when stored, else the messages and the reply."""
    raw = (completion.raw or {}) if completion else {}
    turns: list[dict[str, Any]] = []
    if raw.get("transcript"):
        for t in raw["transcript"]:
            turns.append({"role": "user", "content": t.get("user"), "note": f"query {t.get('query')}" if t.get("query") else ""})
            turns.append({"role": "error" if t.get("error") else "assistant", "content": t.get("error") or t.get("assistant"),
                          "note": ", ".join(x for x in (f"verdict {t['verdict']}" if t.get("verdict") else "",
                                                        "rolled back" if t.get("rolled_back") else "") if x)})
        return turns
    for m in item.to_messages():
        turns.append({"role": m.role, "content": m.content, "note": ""})
    if completion is not None:
        if completion.error:
            turns.append({"role": "error", "content": f"{completion.error_kind or 'error'}: {completion.error}", "note": ""})
        else:
            turns.append({"role": "assistant", "content": completion.text, "note": completion.finish_reason or ""})
        for call in completion.tool_calls or []:
            fn = call.get("function") or {}
            turns.append({"role": "tool call", "content": f"{fn.get('name')}({fn.get('arguments')})", "note": call.get("id") or ""})
    return turns


def item_detail(store: Store, run_id: str, item_id: str) -> dict[str, Any]:
    """Everything stored about one item (schema ``airisk.item/1``)."""
    run = store.get_run(run_id)
    from airisk.store.store import _completion, _item, _judgment  # one row each: reuse the store's converters

    with store.session() as s:
        irow = s.scalars(select(ItemRow).where(ItemRow.run_id == run.id, ItemRow.item_id == item_id)).first()
        if irow is None:
            raise BadQuery(f"run {run.id} has no item '{item_id}'")
        rrow = s.scalars(select(ResponseRow).where(ResponseRow.run_id == run.id, ResponseRow.item_id == item_id)).first()
        jrows = s.scalars(select(JudgmentRow).where(JudgmentRow.run_id == run.id, JudgmentRow.item_id == item_id)
                          .order_by(JudgmentRow.judge_id)).all()
        item, comp, judgments = _item(irow), _completion(rrow) if rrow else None, [_judgment(j) for j in jrows]
    md = item.metadata or {}
    raw = (comp.raw or {}) if comp else {}
    lineage = None
    if md.get("seed_id") or md.get("lineage"):
        lineage = {"seed_id": md.get("seed_id"), "attack": md.get("attack"), "queries": md.get("queries"),
                   "seed_prompt": md.get("seed_prompt"), "chain": (md.get("lineage") or {}).get("chain", []),
                   "attack_error": md.get("attack_error")}
    primary = primary_judge(run)
    return {
        "schema": "airisk.item/1", "run_id": run.id, "run_kind": run.kind, "item": item.model_dump(mode="json"),
        "response": comp.model_dump(mode="json") if comp else None,
        "judgments": [j.model_dump(mode="json") | {"primary": j.judge_id == primary} for j in judgments],
        "turns": _turns(item, comp), "lineage": lineage,
        "trajectory": raw.get("trajectory"), "outcome": raw.get("outcome"),
    }


# -- compare --------------------------------------------------------------------------------------


def _hazard_counts(store: Store, run_id: str, judge: str | None) -> dict[str, tuple[int, int]]:
    """hazard -> (violating, judged) for harm items, by SQL (fast on large runs)."""
    with store.session() as s:
        rows = s.execute(
            select(ItemRow.hazard, JudgmentRow.label, func.count())
            .join(JudgmentRow, and_(JudgmentRow.run_id == ItemRow.run_id, JudgmentRow.item_id == ItemRow.item_id,
                                    JudgmentRow.judge_id == (judge or "")))
            .where(ItemRow.run_id == run_id, ItemRow.expected != "comply", JudgmentRow.label != "error")
            .group_by(ItemRow.hazard, JudgmentRow.label)).all()
    out: dict[str, list[int]] = {}
    for hazard, label, n in rows:
        k = out.setdefault(hazard or "(none)", [0, 0])
        k[1] += n
        if label == "violating":
            k[0] += n
    return {h: (v[0], v[1]) for h, v in out.items()}


def _rate(k: int, n: int) -> dict[str, Any]:
    from airisk.stats import wilson_interval

    lo, hi = wilson_interval(k, n) if n else (None, None)
    return {"k": k, "n": n, "rate": k / n if n else None, "low": lo, "high": hi}


def compare_runs(store: Store, run_ids: list[str], *, flips_limit: int = 200) -> dict[str, Any]:
    """Per-hazard rates of each run, deltas against the first with Newcombe intervals, and the items
    (same item id in both runs) whose verdict changed (schema ``airisk.compare/1``)."""
    from airisk.stats import newcombe_diff_interval

    if len(run_ids) < 2:
        raise BadQuery("compare needs at least two run ids")
    runs = [store.get_run(r) for r in run_ids]
    judges = [primary_judge(r) for r in runs]
    counts = [_hazard_counts(store, r.id, j) for r, j in zip(runs, judges)]
    hazards = sorted(set().union(*counts))
    rows = []
    for h in hazards:
        cells = [_rate(*c.get(h, (0, 0))) for c in counts]
        deltas = []
        a = cells[0]
        for b in cells[1:]:
            ci = newcombe_diff_interval(a["k"], a["n"], b["k"], b["n"]) if a["n"] and b["n"] else None
            deltas.append({"delta": b["rate"] - a["rate"] if ci else None,
                           "low": ci[0] if ci else None, "high": ci[1] if ci else None})
        rows.append({"hazard": h, "runs": cells, "deltas": deltas})
    flips = [_flips(store, runs[0], judges[0], r, j, flips_limit) for r, j in zip(runs[1:], judges[1:])]
    return {"schema": "airisk.compare/1",
            "runs": [{"id": r.id, "kind": r.kind, "system_spec": hl.system_spec(r), "judge": j} for r, j in zip(runs, judges)],
            "hazards": rows, "delta_method": "Newcombe hybrid score interval (95%), rate of run N minus rate of the first run",
            "flips": flips}


def _flips(store: Store, a: RunInfo, ja: str | None, b: RunInfo, jb: str | None, limit: int) -> dict[str, Any]:
    ya, yb = aliased(JudgmentRow), aliased(JudgmentRow)
    base = (select(ya.item_id, ya.label, yb.label, ItemRow.hazard)
            .join(yb, and_(yb.item_id == ya.item_id, yb.run_id == b.id, yb.judge_id == (jb or "")))
            .join(ItemRow, and_(ItemRow.run_id == a.id, ItemRow.item_id == ya.item_id))
            .where(ya.run_id == a.id, ya.judge_id == (ja or ""), ya.label != yb.label))
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = s.execute(base.order_by(ItemRow.pk).limit(limit)).all()
    return {"a": a.id, "b": b.id, "total": total, "shown": len(rows),
            "items": [{"item_id": i, "hazard": h, "a": la, "b": lb} for i, la, lb, h in rows]}


# -- judges ---------------------------------------------------------------------------------------


def judge_cards() -> list[dict[str, Any]]:
    """Every judge card found (shipped and user), as dicts (the judge card schema)."""
    try:
        from airisk.judges.cards import card_to_dict, iter_cards
    except ImportError:
        return []
    return [card_to_dict(c) for c in iter_cards()]


def run_kind_ok(kind: str | None) -> str | None:
    if kind and kind not in RUN_KINDS:
        raise BadQuery(f"kind must be one of {', '.join(RUN_KINDS)}, not '{kind}'")
    return kind or None


