"""The risk register: requirements formalised as measurable checks, mapped to hazards and frameworks.

A register is a YAML file that a risk owner edits (``airisk govern init`` writes a commented
starter). It holds four things:

* ``system``: the scope - what is assessed, which stored runs belong to it (``runs_system``, a
  glob on the run's system name) and its deployment use cases.
* ``requirements``: plain-language requirements ("must not give uplift for indiscriminate weapons"),
  each with one or more *checks*: a suite selector (dataset / attack / agent runs), a metric, a
  threshold and optional yellow/red zone lines.
* ``risks``: the quantitative view per hazard - exposure (requests per year, share of risky
  traffic), impact per incident as a distribution with an explicit money unit, the check whose
  measured rate drives it and, optionally, the check that measures a mitigation.
* ``sign_off``: who must sign the release.

Every value is validated on load; an error names the field by its path, e.g.
``register.yaml: requirements[0] (R1).checks[0].threshold: Field required``.
Rates are written as fractions (``0.05``) or percentages (``"5%"``); money always carries a
currency, and an impact is money *per incident* (``EUR/incident``).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from airisk.errors import ConfigError

_PCT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?\d+)?)\s*%\s*$", re.I)


def parse_rate(v: Any) -> float:
    """A rate in [0, 1], written as a fraction (``0.05``) or a percentage string (``"5%"``)."""
    if isinstance(v, bool):
        raise ValueError(f"a rate must be a number in [0, 1] or a percentage like '5%', got {v!r}")
    if isinstance(v, str):
        m = _PCT.match(v)
        if m:
            v = float(m.group(1)) / 100
        else:
            try:
                v = float(v)
            except ValueError:
                raise ValueError(f"a rate must be a number in [0, 1] or a percentage like '5%', got {v!r} "
                                 "(a rate has no unit other than %)") from None
    if not isinstance(v, (int, float)):
        raise ValueError(f"a rate must be a number in [0, 1] or a percentage like '5%', got {v!r}")
    v = float(v)
    if not 0 <= v <= 1:
        hint = f" (did you mean '{v:g}%' = {v / 100:g}?)" if 1 < v <= 100 else ""
        raise ValueError(f"a rate must lie in [0, 1], got {v:g}{hint}")
    return v


Rate = Annotated[float, BeforeValidator(parse_rate)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_hazard(v: str) -> str:
    from airisk.scoring.hazards import known_codes

    code = str(v).strip().lower()
    if code not in known_codes():
        raise ValueError(f"unknown hazard code '{v}'; known: {', '.join(sorted(known_codes()))}")
    return code


Hazard = Annotated[str, BeforeValidator(_known_hazard)]


class UseCase(_Strict):
    """A deployment use case; its risk card gathers the hazards it is exposed to."""

    id: str
    description: str = ""
    hazards: list[Hazard] = Field(default_factory=list)


class System(_Strict):
    name: str
    description: str = ""
    owner: str = ""
    version: str = ""
    runs_system: str = Field("*", description="glob on a run's system name: which stored runs assess this system")
    use_cases: list[UseCase] = Field(default_factory=list)


class Suite(_Strict):
    """Which stored runs a check reads. Every given field must match; globs use ``*`` and ``?``."""

    kind: str | None = None  # run kind: eval | redteam | agent | demo ...
    dataset: str | None = None  # glob on the names of the run's datasets
    attack: str | None = None  # slice: items whose metadata ``method``/``attack`` matches
    gate_in_loop: bool | None = None  # agent runs with / without the guard's action gate
    run: str | None = None  # glob on the run id
    system: str | None = None  # glob on the system name (default: the register's ``system.runs_system``)

    @model_validator(mode="after")
    def _some(self) -> "Suite":
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError("a suite needs at least one of kind, dataset, attack, gate_in_loop, run, system")
        return self

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude_none=True).items())


Metric = Literal["violation_rate", "over_refusal_rate"]


class Zones(_Strict):
    yellow: Rate | None = None
    red: Rate | None = None

    @model_validator(mode="after")
    def _order(self) -> "Zones":
        if self.yellow is None and self.red is None:
            raise ValueError("zones need 'yellow' and/or 'red'")
        if self.yellow is not None and self.red is not None and self.yellow > self.red:
            raise ValueError(f"yellow ({self.yellow:g}) must not be above red ({self.red:g})")
        return self


class Check(_Strict):
    """One measurable check: ``metric`` on the runs ``suite`` selects must stay below ``threshold``.

    ``bound: upper`` (default) compares the upper end of the 95% interval - the judge-corrected one
    when the judge has a card and ``corrected`` is true - so a check is met only when the evidence
    says so; ``bound: rate`` compares the point estimate.
    """

    id: str
    suite: Suite
    metric: Metric = "violation_rate"
    hazard: Hazard | None = None  # slice of the runs; default: the requirement's hazards pooled (or all items)
    threshold: Rate
    bound: Literal["upper", "rate"] = "upper"
    corrected: bool = True
    min_items: int = Field(20, ge=1)
    zones: Zones | None = None


class Requirement(_Strict):
    id: str
    text: str
    hazards: list[Hazard] = Field(default_factory=list)
    frameworks: dict[str, list[str]] = Field(default_factory=dict)
    owner: str = ""
    checks: list[Check] = Field(min_length=1)

    @field_validator("frameworks")
    @classmethod
    def _known_items(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        from airisk.taxonomy.frameworks import validate_items

        for fw, ids in v.items():
            validate_items(fw, ids)  # raises ValueError naming the framework and the unknown ids
        return v


_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MONEY_UNIT = re.compile(r"^\s*([A-Za-z]{3})\s*(?:/|per\s+)\s*incident\s*$")


class Impact(_Strict):
    """Loss per incident, in the spirit of FAIR: a distribution over money with an explicit unit.

    * ``lognormal``: ``low`` and ``high`` are the 5th and 95th percentiles (a 90% range).
    * ``pert`` / ``triangular``: ``low`` (minimum), ``mode`` (most likely), ``high`` (maximum).
    * ``fixed``: every incident costs ``value``.
    """

    distribution: Literal["lognormal", "pert", "triangular", "fixed"]
    unit: str  # e.g. "EUR/incident"
    low: float | None = None
    mode: float | None = None
    high: float | None = None
    value: float | None = None

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        m = _MONEY_UNIT.match(v)
        if not m:
            raise ValueError(f"impact is money lost per incident; unit must look like 'EUR/incident', got {v!r}")
        return f"{m.group(1).upper()}/incident"

    @property
    def currency(self) -> str:
        return self.unit.split("/")[0]

    @model_validator(mode="after")
    def _params(self) -> "Impact":
        need = {"lognormal": ("low", "high"), "pert": ("low", "mode", "high"), "triangular": ("low", "mode", "high"),
                "fixed": ("value",)}[self.distribution]
        extra = [f for f in ("low", "mode", "high", "value") if f not in need and getattr(self, f) is not None]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.distribution} impact needs {', '.join(need)}; missing: {', '.join(missing)}")
        if extra:
            raise ValueError(f"a {self.distribution} impact takes {', '.join(need)}; remove: {', '.join(extra)}")
        vals = [getattr(self, f) for f in need]
        if any(x < 0 for x in vals):
            raise ValueError("a loss per incident cannot be negative")
        if self.distribution == "lognormal" and not 0 < self.low < self.high:
            raise ValueError(f"lognormal needs 0 < low < high, got low={self.low:g}, high={self.high:g}")
        if self.distribution in ("pert", "triangular") and not (self.low <= self.mode <= self.high and self.low < self.high):
            raise ValueError(f"{self.distribution} needs low <= mode <= high and low < high, "
                             f"got {self.low:g}, {self.mode:g}, {self.high:g}")
        return self


class Exposure(_Strict):
    """How often the hazard is put to the system: risky requests per year = requests_per_year x risky_share."""

    requests_per_year: float = Field(gt=0)
    risky_share: Rate

    @field_validator("requests_per_year", mode="before")
    @classmethod
    def _count(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip().lower().replace("_", "").replace(",", "")
            s = re.sub(r"\s*(requests?)?\s*(/|per)\s*(year|yr|y)$", "", s)
            try:
                return float(s)
            except ValueError:
                raise ValueError(f"requests_per_year is a count per year (e.g. 2000000 or '2e6/year'), got {v!r}") from None
        return v


class Mitigation(_Strict):
    """A control whose effect was measured: the check reading the runs with the control in place."""

    name: str
    check: str


class Risk(_Strict):
    id: str
    title: str = ""
    hazard: Hazard | None = None  # None: a risk not tied to one content hazard (e.g. unsafe agent actions)
    check: str  # the check whose measured violation rate drives this risk
    exposure: Exposure
    impact: Impact
    mitigation: Mitigation | None = None
    rate_model: Literal["interval", "point"] = "interval"
    use_cases: list[str] = Field(default_factory=list)


class SignOff(_Strict):
    role: str
    name: str = ""


class Register(_Strict):
    version: Literal[1] = 1
    system: System
    currency: str = "EUR"
    requirements: list[Requirement] = Field(min_length=1)
    risks: list[Risk] = Field(default_factory=list)
    sign_off: list[SignOff] = Field(default_factory=list)
    source: str | None = Field(None, exclude=True)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not _CURRENCY.match(v or ""):
            raise ValueError(f"currency must be an ISO 4217 code like EUR or USD, got {v!r}")
        return v

    @model_validator(mode="after")
    def _references(self) -> "Register":
        _unique("requirements", [r.id for r in self.requirements])
        checks = {c.id: c for r in self.requirements for c in r.checks}
        _unique("checks", [c.id for r in self.requirements for c in r.checks])
        _unique("risks", [r.id for r in self.risks])
        ucs = {u.id for u in self.system.use_cases}
        for i, risk in enumerate(self.risks):
            where = f"risks[{i}] ({risk.id})"
            for field, cid in (("check", risk.check), ("mitigation.check", risk.mitigation.check if risk.mitigation else None)):
                if cid is not None and cid not in checks:
                    raise ValueError(f"{where}.{field}: unknown check '{cid}'; checks: {', '.join(checks)}")
                if cid is not None and checks[cid].metric != "violation_rate":
                    raise ValueError(f"{where}.{field}: check '{cid}' measures {checks[cid].metric}; a risk needs a violation_rate check")
            if risk.impact.currency != self.currency:
                raise ValueError(f"{where}.impact.unit: {risk.impact.unit} is not in the register's currency {self.currency}")
            bad = [u for u in risk.use_cases if u not in ucs]
            if bad:
                raise ValueError(f"{where}.use_cases: unknown use case(s) {bad}; system.use_cases: {sorted(ucs)}")
        return self

    def check(self, check_id: str) -> tuple[Requirement, Check]:
        for r in self.requirements:
            for c in r.checks:
                if c.id == check_id:
                    return r, c
        raise ConfigError(f"no check '{check_id}' in the register")

    def system_matches(self, name: str, suite: Suite) -> bool:
        return fnmatch.fnmatchcase(name or "", suite.system or self.system.runs_system)


def _unique(what: str, ids: list[str]) -> None:
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{what}: duplicate id(s) {dup}")


def _field_path(loc: tuple, data: Any) -> str:
    """``('requirements', 0, 'checks', 1, 'threshold')`` -> ``requirements[0] (R1).checks[1] (R1.b).threshold``."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and node.get("id"):
                out += f" ({node['id']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def parse_register(data: Any, *, source: str = "register") -> Register:
    """Validate a register given as a dict; errors name ``source`` and the field path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a register is a YAML mapping with system, requirements, risks")
    try:
        reg = Register.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            path = _field_path(loc, data)
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {msg}" if path else msg)
        raise ConfigError(f"{source}: " + "; ".join(lines)) from None
    reg.source = source
    return reg


def load_register(path: str | Path) -> Register:
    """Read and validate a register file (see the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read register {p}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    return parse_register(data, source=str(p))
