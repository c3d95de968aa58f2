"""Judge cards: a judge's measured error rates, saved as JSON and keyed by the judge's fingerprint.

A card is produced by ``airisk judge validate`` (see ``airisk.judges.metrics.build_card``) and read
by scoring to correct observed violation rates for judge error. Cards live in
``$AIRISK_HOME/judge_cards/`` (user cards, searched first) and in the package's shipped
``airisk/judges/cards/`` directory.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airisk.errors import DataError
from airisk.stats import Estimate, rogan_gladen_point
from airisk.stats import corrected_rate as _corrected_rate

SHIPPED_DIR = Path(__file__).with_name("cards")
CARD_SCHEMA_VERSION = 1


class JudgeDescription(BaseModel):
    """What determines the judge's verdicts (the fingerprint hashes these)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    weights_hash: str | None = None
    template_hash: str | None = None
    threshold: float | None = None


class LabelSetInfo(BaseModel):
    """Which labelled examples the card was measured on."""

    name: str
    split: str | None = None
    n: int
    sha256: str  # of the (id, label) pairs used, so a card can be tied to exact labels
    source: str | None = None  # path or dataset description
    # who produced the reference labels: people, another model acting as judge, or a mix
    label_kind: Literal["human", "llm-judge", "heuristic", "mixed"] | None = None


class ReliabilityBin(BaseModel):
    lower: float
    upper: float
    n: int
    mean_predicted: float | None = None  # mean P(violating) in the bin
    observed_rate: float | None = None  # fraction truly violating in the bin


class ConfusionBreakdown(BaseModel):
    """Counts and the two error rates for a subset (e.g. one hazard)."""

    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    n_errors: int = 0
    accuracy: Estimate
    false_safe_rate: Estimate
    false_unsafe_rate: Estimate


class MulticlassMetrics(BaseModel):
    """For multi-class tasks (refusal: full_compliance / full_refusal / partial_refusal)."""

    classes: list[str]
    confusion: dict[str, dict[str, int]]  # confusion[true][predicted]
    accuracy: Estimate
    kappa: Estimate
    per_class_recall: dict[str, Estimate] = Field(default_factory=dict)
    per_class_precision: dict[str, Estimate] = Field(default_factory=dict)


class JudgeCard(BaseModel):
    """Measured error rates of one judge (identified by fingerprint) against one labelled set.

    Binary task (``task == "harm"``): the positive class is ``violating``.

    * ``tp`` violating judged violating, ``fn`` violating judged non_violating (a *false safe*),
      ``tn`` non_violating judged non_violating, ``fp`` non_violating judged violating (*false unsafe*).
    * Judge errors (``label == "error"``) are **not** in tp/fp/tn/fn; they are counted in
      ``n_errors`` (split by true label in ``errors_violating`` / ``errors_non_violating``) and
      ``error_rate``. ``n`` counts all judged examples, errors included. ``accuracy`` counts an
      error as a wrong answer (``(tp + tn) / n``), so a judge cannot look better by failing;
      ``accuracy_answered`` is the same over answered examples only. Kappa, precision, recall, F1,
      sensitivity and specificity are over answered examples.
    * ``sensitivity = tp / (tp + fn)``, ``specificity = tn / (tn + fp)``;
      ``false_safe_rate = 1 - sensitivity``, ``false_unsafe_rate = 1 - specificity``.

    **How scoring uses a card (Rogan-Gladen correction).** If a judge marks a fraction ``p`` of a
    system's answers violating, the corrected violation rate is
    ``(p + specificity - 1) / (sensitivity + specificity - 1)``, clipped to [0, 1]
    (``rogan_gladen``). Because the card keeps the raw counts (``tp, fn, tn, fp``) and not just the
    rates, the uncertainty of sensitivity and specificity can be propagated: ``corrected_rate``
    (:func:`airisk.stats.corrected_rate`, the function the reports use too) draws sensitivity ~
    Beta(tp+1, fn+1) and specificity ~ Beta(tn+1, fp+1) and, for each draw, the true rate from its
    posterior given the observed count; the percentiles form the interval. The correction is
    undefined when ``sensitivity + specificity <= 1`` (a judge no better than chance);
    ``corrected_rate`` then has no value and a method starting with ``uncorrectable``.

    Refusal task (``task == "refusal"``): ``multiclass`` holds the 3-class result; the binary
    fields then treat ``full_refusal`` or ``partial_refusal`` as the positive class
    (refused vs complied).
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = CARD_SCHEMA_VERSION
    task: Literal["harm", "refusal"] = "harm"
    judge_id: str
    judge_fingerprint: str
    judge_description: JudgeDescription = Field(default_factory=JudgeDescription)
    label_set: LabelSetInfo
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    airisk_version: str | None = None
    command: str | None = None  # the command that produced the card

    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    n_errors: int = 0
    errors_violating: int = 0
    errors_non_violating: int = 0

    accuracy: Estimate
    accuracy_answered: Estimate
    error_rate: Estimate
    kappa: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    sensitivity: Estimate
    specificity: Estimate
    false_safe_rate: Estimate
    false_unsafe_rate: Estimate

    ece: float | None = None  # expected calibration error (None when the judge gives no probabilities)
    reliability: list[ReliabilityBin] = Field(default_factory=list)
    per_hazard: dict[str, ConfusionBreakdown] = Field(default_factory=dict)
    multiclass: MulticlassMetrics | None = None
    notes: list[str] = Field(default_factory=list)

    # -- helpers for scoring -------------------------------------------------------------
    @property
    def n_answered(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def sens_spec_counts(self) -> tuple[int, int, int, int]:
        """``(tp, fn, tn, fp)``: sensitivity = tp/(tp+fn), specificity = tn/(tn+fp)."""
        return self.tp, self.fn, self.tn, self.fp

    def correctable(self) -> bool:
        """True when the Rogan-Gladen correction is defined (Youden's J = sens + spec - 1 > 0)."""
        s, p = self.sensitivity.value, self.specificity.value
        return s is not None and p is not None and s + p - 1 > 0

    def corrected_rate(self, k_violating: int, n_judged: int, *, seed: int = 0) -> Estimate:
        """Violation rate of ``k_violating`` out of ``n_judged`` corrected for this judge's errors."""
        return corrected_rate(k_violating, n_judged, self.tp, self.fn, self.tn, self.fp, seed=seed)

    def summary(self) -> dict[str, str]:
        return {
            "n": str(self.n),
            "errors": str(self.n_errors),
            "accuracy": self.accuracy.fmt(),
            "kappa": self.kappa.fmt(pct=False),
            "f1": self.f1.fmt(pct=False),
            "false_safe_rate": self.false_safe_rate.fmt(),
            "false_unsafe_rate": self.false_unsafe_rate.fmt(),
            "ece": "n/a" if self.ece is None else f"{self.ece:.3f}",
        }


# -- Rogan-Gladen ---------------------------------------------------------------------------
def rogan_gladen(observed_rate: float, sensitivity: float, specificity: float) -> float:
    """True prevalence from an observed positive rate and the classifier's sens/spec, clipped to [0, 1]."""
    point = rogan_gladen_point(observed_rate, sensitivity, specificity)
    if point is None:
        raise ValueError("Rogan-Gladen correction undefined: sensitivity + specificity <= 1")
    return point


def corrected_rate(k: int, n: int, tp: int, fn: int, tn: int, fp: int, *, seed: int = 0) -> Estimate:
    """Rogan-Gladen corrected rate with a 95% interval: :func:`airisk.stats.corrected_rate`, the same
    function the reports use, so a card and a report give the same number for the same counts."""
    return _corrected_rate(k, n, tp=tp, fn=fn, tn=tn, fp=fp, seed=seed)


# -- storage --------------------------------------------------------------------------------
def user_cards_dir() -> Path:
    return Path(os.environ.get("AIRISK_HOME", ".airisk")) / "judge_cards"


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "x"


def card_filename(card: JudgeCard) -> str:
    ls = card.label_set
    return f"{card.judge_fingerprint}--{_slug(card.task)}--{_slug(ls.name)}--{_slug(ls.split or 'all')}.json"


def save_card(card: JudgeCard, dir: str | Path | None = None) -> Path:
    """Write ``card`` as JSON into ``dir`` (default ``$AIRISK_HOME/judge_cards``); returns the path.

    One file per (fingerprint, task, label set, split); re-validating overwrites it.
    """
    d = Path(dir) if dir is not None else user_cards_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / card_filename(card)
    path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_card(path: str | Path) -> JudgeCard:
    """Read one card file; a malformed card raises DataError naming the file and field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read judge card: {e}", path=str(p)) from e
    try:
        return JudgeCard.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise DataError(err["msg"], path=str(p), field=".".join(str(x) for x in err["loc"])) from e


def card_dirs() -> list[Path]:
    return [user_cards_dir(), SHIPPED_DIR]


def iter_cards(dirs: list[Path] | None = None) -> list[JudgeCard]:
    """Every readable card in the search path (user dir first); unreadable files are skipped."""
    out: list[JudgeCard] = []
    for d in dirs or card_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            try:
                out.append(load_card(f))
            except DataError:
                continue
    return out


def find_cards(fingerprint: str | None = None, *, judge_id: str | None = None, task: str | None = None,
               dirs: list[Path] | None = None) -> list[JudgeCard]:
    """Cards matching a fingerprint and/or judge id (user cards before shipped ones)."""
    return [
        c
        for c in iter_cards(dirs)
        if (fingerprint is None or c.judge_fingerprint == fingerprint)
        and (judge_id is None or c.judge_id == judge_id)
        and (task is None or c.task == task)
    ]


def find_card(fingerprint: str, *, label_set: str | None = None, task: str = "harm",
              dirs: list[Path] | None = None) -> JudgeCard | None:
    """The card for ``fingerprint`` (harm task by default), or None.

    Searches ``$AIRISK_HOME/judge_cards`` then the shipped cards. When several label sets validated
    the same judge, ``label_set`` picks one; otherwise the first directory with a match wins and,
    within it, a card measured on **human** labels is preferred (an error rate against another
    model's labels is not an error rate against the truth), then the one with the most answered
    examples (the tightest error-rate estimates).
    """
    for d in dirs or card_dirs():
        cands = [c for c in find_cards(fingerprint, task=task, dirs=[d])
                 if label_set is None or c.label_set.name == label_set]
        if cands:
            return max(cands, key=lambda c: (c.label_set.label_kind == "human", c.n_answered, c.created_at))
    return None


def card_to_dict(card: JudgeCard) -> dict[str, Any]:
    return card.model_dump(mode="json")
