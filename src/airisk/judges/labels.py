"""Labelled (prompt, response) examples for training and validating judges.

One job: turn the labelled public sets in the shared data folder, and a user's own label file, into
``LabelledExample`` rows with one meaning of ``label`` and ``refusal`` across sources, plus a
deterministic train/validation split that is disjoint by prompt (``group``).

Sources (``load_labelled(name)``; see docs/labels.md for what each label means and what it does not):

- ``harmbench-cls-val``: HarmBench's classifier validation pairs (shared part), three human labels each;
  ``label`` is the majority, ``intent`` the behaviour (plus its context passage).
- ``jbb-artifacts``: JailbreakBench attack artifacts, real responses with the ``jailbroken`` label of an
  LLM judge (Llama-3-70B): weaker than human labels, marked ``label_source="llm-judge"``.
- ``xstest-completions``: XSTest completions of four models with adjudicated human labels.
- ``hh-harmless``: HH-RLHF harmless-base preference pairs. Only *relative* labels exist, so ``label`` is
  None and ``metadata['preference']`` says which reply of the pair was preferred as less harmful.
- ``openai-moderation``: text-only moderation samples (8 categories); the text is the ``response``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from airisk.datasets import catalog, mappings
from airisk.datasets.readers import RowErrors, iter_csv, iter_jsonl
from airisk.errors import DataError, DatasetNotFound

HarmLabel = Literal["violating", "non_violating"]
RefusalClass = Literal["full_compliance", "full_refusal", "partial_refusal"]
Split = Literal["all", "train", "val"]

VAL_FRACTION = 0.2  # share of groups held out for validation


class LabelledExample(BaseModel):
    """One labelled exchange. ``label``/``refusal`` are None where the source says nothing about them."""

    id: str
    prompt: str
    response: str
    intent: str | None = None  # the request the response is judged against (behaviour/goal); None = the prompt
    label: HarmLabel | None = None
    refusal: RefusalClass | None = None
    hazard: str | None = None  # AILuminate hazard code, where the source's category maps to one
    source: str
    group: str  # prompt-level key: examples sharing it always fall in the same split
    model: str | None = None  # the model that wrote the response
    locale: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    label_source: Literal["human", "llm-judge", "heuristic"] = "human"  # who produced ``label``/``refusal``


# ---------------------------------------------------------------------------------------------- split


def split_of(group: str, val_fraction: float = VAL_FRACTION) -> Literal["train", "val"]:
    """Deterministic split of a group key: the same key lands in the same split on every machine."""
    h = int.from_bytes(hashlib.sha256(group.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    return "val" if (h % 10_000) < val_fraction * 10_000 else "train"


def fold_of(group: str, folds: int = 5) -> int:
    """Which of ``folds`` equal group folds a key lands in, for cross-validation. With the default
    five folds, fold 0 is exactly ``split_of``'s validation split, so fold 0 of a cross-validation
    is the held-out split every shipped figure is measured on."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    h = int.from_bytes(hashlib.sha256(group.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    return (h % 10_000) * folds // 10_000


def apply_split(examples: Iterable[LabelledExample], split: Split) -> list[LabelledExample]:
    if split not in ("all", "train", "val"):
        raise ValueError(f"split must be 'all', 'train' or 'val', not {split!r}")
    if split == "all":
        return list(examples)
    return [e for e in examples if split_of(e.group) == split]


# ------------------------------------------------------------------------------------ data location


def resolve_file(folder: str, relpath: str) -> Path:
    """Find a shared-data file through the datasets catalog (AIRISK_DATA_PATH, then cache, then download)."""
    return Path(catalog.resolve_file(folder, relpath))


# ---------------------------------------------------------------------------------------- sources


def _load_jbb() -> list[LabelledExample]:
    path = resolve_file("jailbreakbench", "artifacts_jailbreaks.jsonl")
    out: list[LabelledExample] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            if r.get("prompt") is None or r.get("response") is None:
                continue  # PAIR rows with no submitted prompt: nothing to judge
            out.append(
                LabelledExample(
                    id=f"jbb:{r['method']}:{r['target_model']}:{r['index']}",
                    prompt=r["prompt"],
                    response=r["response"],
                    intent=r["goal"],
                    label="violating" if r["jailbroken"] else "non_violating",
                    label_source="llm-judge",  # JailbreakBench's Llama-3-70B judge, not people
                    hazard=mappings.jbb_to_hazard(r["category"], r["goal"]),
                    source="jbb-artifacts",
                    # behavior index, not name: two behaviors are spelled differently across files
                    group=f"jbb:{r['index']}",
                    model=r["target_model"],
                    locale="en_US",
                    metadata={
                        "method": r["method"],
                        "attack_type": r["attack_type"],
                        "goal": r["goal"],
                        "behavior": r["behavior"],
                        "behavior_index": r["index"],
                        "source_category": r["category"],
                        "jailbroken_llama_guard1": r.get("jailbroken_llama_guard1"),
                        "line": n,
                    },
                )
            )
    return out


_XSTEST_MODELS = ("llama2new", "llama2orig", "mistralguard", "mistralinstruct")
_XSTEST_REFUSAL = {"1_full_compliance": "full_compliance", "2_full_refusal": "full_refusal", "3_partial_refusal": "partial_refusal"}


def _xstest_harm(unsafe_prompt: bool, refusal: str) -> HarmLabel | None:
    """Harm label derived from XSTest's human compliance label.

    Safe prompts: nothing is violating. Unsafe prompts: full compliance is violating, full refusal is
    not; a partial refusal (refuses, then partly answers) is left unlabelled because the human label
    does not say whether the harmful part was delivered.
    """
    if not unsafe_prompt:
        return "non_violating"
    return {"full_compliance": "violating", "full_refusal": "non_violating"}.get(refusal)


def _load_xstest() -> list[LabelledExample]:
    prompts = {}
    with resolve_file("xstest", "xstest_prompts.csv").open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            prompts[r["id"]] = r
    out: list[LabelledExample] = []
    for model in _XSTEST_MODELS:
        path = resolve_file("xstest", f"model_completions/xstest_v2_completions_{model}.csv")
        with path.open(encoding="utf-8", newline="") as f:
            for n, r in enumerate(csv.DictReader(f), 2):
                refusal = _XSTEST_REFUSAL.get(r["final_label"].strip())
                if refusal is None:
                    raise DataError(f"unknown label {r['final_label']!r}", path=str(path), line=n, field="final_label")
                pid = r["id"].removeprefix("v2-")
                meta = prompts.get(pid, {})
                unsafe = r["type"].startswith("contrast_")
                out.append(
                    LabelledExample(
                        id=f"xstest:{model}:{pid}",
                        prompt=r["prompt"],
                        response=r["completion"].strip(),
                        intent=r["prompt"],
                        label=_xstest_harm(unsafe, refusal),
                        refusal=refusal,  # type: ignore[arg-type]
                        hazard=mappings.xstest_type_to_hazard(r["type"], meta.get("note"), r["prompt"]) if unsafe else None,
                        source="xstest-completions",
                        group=f"xstest:{pid}",
                        model=model,
                        locale="en_US",
                        metadata={
                            "type": r["type"],
                            "prompt_label": "unsafe" if unsafe else "safe",
                            "focus": meta.get("focus"),
                            "note": meta.get("note") or None,
                            "annotator_agreement": r["agreement"].strip().upper() == "TRUE",
                            "source_category": r["type"],
                        },
                    )
                )
    return out


def _split_hh(dialogue: str) -> tuple[str, str]:
    """Split an HH dialogue into (everything before the final assistant turn, final assistant reply)."""
    cut = dialogue.rfind("\n\nAssistant:")
    if cut < 0:
        return dialogue.strip(), ""
    return dialogue[:cut].strip(), dialogue[cut + len("\n\nAssistant:") :].strip()


def _load_hh() -> list[LabelledExample]:
    path = resolve_file("hh-rlhf-harmless-base", "harmless-base_test.jsonl")
    out: list[LabelledExample] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            context, chosen = _split_hh(r["chosen"])
            _, rejected = _split_hh(r["rejected"])
            group = "hh:" + hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
            for pref, resp in (("chosen", chosen), ("rejected", rejected)):
                # Relative label only: 'rejected' was judged MORE harmful than 'chosen', not harmful per se.
                out.append(
                    LabelledExample(
                        id=f"hh:{n}:{pref}",
                        prompt=context,
                        response=resp,
                        source="hh-harmless",
                        group=group,
                        model="anthropic-52b-context-distilled",
                        locale="en_US",
                        metadata={"pair": n, "preference": pref, "turns": context.count("Human:")},
                    )
                )
    return out


MODERATION_CATEGORIES = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


def _load_moderation() -> list[LabelledExample]:
    path = resolve_file("openai-moderation", "samples-1680.jsonl")
    out: list[LabelledExample] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            cats = {k: int(r[k]) for k in MODERATION_CATEGORIES if k in r}  # absent key = unknown, not 0
            positives = [k for k, v in cats.items() if v == 1]
            if positives:
                label: HarmLabel | None = "violating"
            elif len(cats) == len(MODERATION_CATEGORIES):
                label = "non_violating"
            else:
                label = None  # some categories unannotated: cannot call it clean
            hazards = [h for h in (mappings.moderation_to_hazard(c) for c in positives) if h]
            out.append(
                LabelledExample(
                    id=f"moderation:{n}",
                    prompt="",
                    response=r["prompt"],
                    label=label,
                    hazard=hazards[0] if hazards else None,
                    source="openai-moderation",
                    group=f"moderation:{n}",
                    locale=None,
                    metadata={"text_only": True, "categories": cats, "hazards": sorted(set(hazards)), "source_category": ",".join(positives) or None},
                )
            )
    return out


def harmbench_intent(behavior: str | None, context: str | None) -> str | None:
    """HarmBench's classifier reads the behaviour and, for contextual behaviours, the context passage:
    the behaviour comes first so that a clipped intent still says what was asked."""
    if not behavior:
        return None
    return f"{behavior}\n\nContext: {context}" if context else behavior


def _load_harmbench_cls() -> list[LabelledExample]:
    path = resolve_file("harmbench-cls-val", "labels.jsonl")
    out: list[LabelledExample] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            r = json.loads(line)
            votes = [int(v) for v in r["human"]]
            out.append(
                LabelledExample(
                    id=r["id"],
                    prompt=r["prompt"],
                    response=r["response"],
                    intent=harmbench_intent(r.get("goal"), r.get("context")),
                    label="violating" if r["label"] == "violating" else "non_violating",
                    hazard=mappings.harmbench_to_hazard(r["semantic_category"], r.get("goal")) if r.get("semantic_category") else None,
                    source="harmbench-cls-val",
                    group=f"hb:{r['behavior_id']}",  # both rows of a behaviour land in the same split
                    model=r.get("source_model"),
                    locale="en_US",
                    metadata={"behavior_id": r["behavior_id"], "attack_method": r.get("attack_method"), "human_votes": votes,
                              "unanimous": len(set(votes)) == 1, "source_category": r.get("semantic_category"),
                              "functional_category": r.get("functional_category"), "line": n},
                )
            )
    return out


AUTHORED_FILE = Path(__file__).parent / "data" / "authored_pairs.jsonl"


def _load_authored() -> list[LabelledExample]:
    """Hard cases written by the airisk authors (labels by us, not by a third party): refusals that
    quote the request, fiction without operational detail, educational answers and off-target
    answers (non-violating); harm after a disclaimer, inside a role-play or after a refusal
    (violating); benign requests that sound harmful. Shipped in the package; training data only."""
    return [e.model_copy(update={"source": "airisk-authored"}) for e in read_label_file(AUTHORED_FILE)]


HARD_NEGATIVES_FILE = Path(__file__).parent / "data" / "hard_negatives.jsonl"


def _load_hard_negatives() -> list[LabelledExample]:
    """Long, on-topic responses that look compliant but do not deliver the harmful behaviour, all
    labelled non_violating (labels by us: written by the airisk authors with an LLM's help, checked
    against HarmBench's labelling rules, never by a third party). Why: the judge flagged about two in
    three such long benign HarmBench generations (debunkings, generic essays, neutralised edits,
    "Sure, here is..." followed by nothing usable). Intents are our own, not HarmBench's or
    JailbreakBench's, so no held-out behaviour is trained on. Training data only."""
    return [e.model_copy(update={"source": "airisk-hard-negatives"}) for e in read_label_file(HARD_NEGATIVES_FILE)]


SOURCES: dict[str, Callable[[], list[LabelledExample]]] = {
    "airisk-authored": _load_authored,
    "airisk-hard-negatives": _load_hard_negatives,
    "harmbench-cls-val": _load_harmbench_cls,
    "jbb-artifacts": _load_jbb,
    "xstest-completions": _load_xstest,
    "hh-harmless": _load_hh,
    "openai-moderation": _load_moderation,
}


def available() -> list[str]:
    return sorted(SOURCES)


def load_labelled(name: str, split: Split = "all") -> list[LabelledExample]:
    """Load a named labelled set (or a user label file, if ``name`` is a path) and take one split."""
    loader = SOURCES.get(name)
    if loader is None:
        p = Path(name)
        if p.suffix.lower() in (".jsonl", ".csv") or p.exists():
            return apply_split(read_label_file(p), split)
        raise DatasetNotFound(f"unknown label set {name!r}; available: {', '.join(available())}, or a .jsonl/.csv label file")
    return apply_split(loader(), split)


# ------------------------------------------------------------------------------- user label format

_LABEL_ALIASES = {
    "violating": "violating", "unsafe": "violating", "1": "violating", "true": "violating",
    "non_violating": "non_violating", "non-violating": "non_violating", "safe": "non_violating", "0": "non_violating", "false": "non_violating",
}  # fmt: skip
_REFUSAL_ALIASES = {k: k for k in ("full_compliance", "full_refusal", "partial_refusal")} | {
    "1_full_compliance": "full_compliance", "2_full_refusal": "full_refusal", "3_partial_refusal": "partial_refusal",
}  # fmt: skip
_KNOWN_FIELDS = {"id", "prompt", "response", "intent", "label", "refusal", "hazard", "group", "model", "locale", "metadata",
                 "label_source"}
# columns other tools use for the request a response is judged against (JailbreakBench goal, HarmBench behavior)
_INTENT_ALIASES = ("intent", "goal", "behavior", "behaviour")


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(physical line where the record starts, record) via the datasets' strict readers."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise DataError("label files must end in .jsonl or .csv", path=str(path))
    text = path.read_text(encoding="utf-8")  # strict: bad encoding is reported by the caller
    errors = RowErrors(path, skip_bad=False)
    return iter_jsonl(text, errors) if suffix == ".jsonl" else iter_csv(text, errors)


def _known_hazards() -> set[str]:
    from airisk.taxonomy import hazard_codes

    return set(hazard_codes())


def read_label_file(path: str | Path) -> list[LabelledExample]:
    """Read a user's label file (JSONL or CSV; format in docs/labels.md). Errors name file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError("label file not found", path=str(path))
    hazards = _known_hazards()
    out: list[LabelledExample] = []
    seen: dict[str, int] = {}
    try:
        rows = list(_rows(path))
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 ({e.reason} at byte {e.start})", path=str(path)) from None
    for n, row in rows:

        def err(msg: str, field: str | None = None, _n: int = n) -> DataError:
            return DataError(msg, path=str(path), line=_n, field=field)

        for f in ("prompt", "response"):
            v = row.get(f)
            if v is None:
                raise err("missing required field", f)
            if not isinstance(v, str):
                raise err(f"must be a string, got {type(v).__name__}", f)
        raw_label = row.get("label")
        label = None
        if raw_label not in (None, ""):
            label = _LABEL_ALIASES.get(str(raw_label).strip().lower())
            if label is None:
                raise err(f"unknown label {raw_label!r}; use violating or non_violating", "label")
        raw_ref = row.get("refusal")
        refusal = None
        if raw_ref not in (None, ""):
            refusal = _REFUSAL_ALIASES.get(str(raw_ref).strip().lower())
            if refusal is None:
                raise err(f"unknown refusal {raw_ref!r}; use full_compliance, full_refusal or partial_refusal", "refusal")
        if label is None and refusal is None:
            raise err("needs a label (violating/non_violating) or a refusal class", "label")
        hazard = row.get("hazard") or None
        if hazard is not None:
            hazard = str(hazard).strip().lower()
            if hazard not in hazards:
                raise err(f"unknown hazard code {hazard!r}; use an AILuminate code such as {', '.join(sorted(hazards)[:4])}", "hazard")
        ex_id = str(row.get("id") or "").strip() or f"{path.name}:{n}"
        if ex_id in seen:
            raise err(f"duplicate id {ex_id!r} (first on line {seen[ex_id]})", "id")
        seen[ex_id] = n
        metadata = row.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise err("must be a JSON object", "metadata")
        intent = next((row[k] for k in _INTENT_ALIASES if isinstance(row.get(k), str) and row[k].strip()), None)
        if intent is not None and row.get("context") and isinstance(row["context"], str) and "intent" not in row:
            intent = harmbench_intent(intent, row["context"])
        for k in _INTENT_ALIASES:
            if row.get(k) not in (None, "") and not isinstance(row[k], str):
                raise err(f"must be a string, got {type(row[k]).__name__}", k)
        label_source = str(row.get("label_source") or "human").strip().lower()
        if label_source not in ("human", "llm-judge", "heuristic"):
            raise err(f"unknown label_source {label_source!r}; use human, llm-judge or heuristic", "label_source")
        extra = {k: v for k, v in row.items() if k not in _KNOWN_FIELDS and v not in (None, "")}
        group = str(row.get("group") or "").strip() or "prompt:" + hashlib.sha256(row["prompt"].encode("utf-8", "surrogatepass")).hexdigest()[:16]
        out.append(
            LabelledExample(
                id=ex_id,
                prompt=row["prompt"],
                response=row["response"],
                intent=intent,
                label=label,  # type: ignore[arg-type]
                refusal=refusal,  # type: ignore[arg-type]
                hazard=hazard,
                label_source=label_source,  # type: ignore[arg-type]
                source=f"file:{path.name}",
                group=group,
                model=(row.get("model") or None),
                locale=(row.get("locale") or None),
                metadata={**metadata, **extra, "line": n},
            )
        )
    if not out:
        raise DataError("no labelled rows", path=str(path))
    return out


def write_label_file(examples: Iterable[LabelledExample], path: str | Path) -> Path:
    """Write examples in the user label format (JSONL), e.g. to export a subset for review."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            row = e.model_dump(include={"id", "prompt", "response", "intent", "label", "refusal", "hazard", "group", "model", "locale"},
                               exclude_none=True)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


__all__ = [
    "LabelledExample",
    "SOURCES",
    "VAL_FRACTION",
    "apply_split",
    "available",
    "load_labelled",
    "read_label_file",
    "resolve_file",
    "fold_of",
    "split_of",
    "write_label_file",
]
