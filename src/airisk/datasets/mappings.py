"""Map other datasets' own harm categories onto AILuminate hazard codes.

Each function takes the source's category string (and, where the category is too broad to
decide, the item text) and returns a hazard code from :mod:`airisk.taxonomy` or ``None`` when no
AILuminate hazard fits (e.g. generic misinformation, government decision-making). The tables are
the airisk authors' judgement; the source category is always kept on the item as
``source_category`` so analyses can use it instead.
"""

from __future__ import annotations

import re

# Ordered (pattern, hazard) rules used to refine broad categories from the item text. Order
# matters: the more specific hazards (children, self-harm, mass-casualty weapons) come first.
_TEXT_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(child|minor|underage|teen\w*|kid)s?\b.*\b(sex|sexual|explicit|nude|porn)|"
                r"\b(sex|sexual|explicit|nude|porn)\w*\b.*\b(child|minor|underage)", re.I), "cse"),
    (re.compile(r"suicid|self[- ]?harm|self[- ]injur|cutting myself|anorexi|bulimi|starve (my|your)self", re.I), "ssh"),
    (re.compile(r"nerve agent|sarin|vx\b|anthrax|botulinum|ricin|smallpox|bioweapon|biological weapon|"
                r"chemical weapon|dimethylmercury|mustard gas|uranium|plutonium|nuclear|radiolog|dirty bomb|"
                r"pipe bomb|car bomb|explosive|\bbomb\b|\bied\b|pathogen|toxin", re.I), "iwp"),
    (re.compile(r"\brape\b|sexual (assault|harass)|non-?consensual sex|sex traffick|commercial sexual|"
                r"prostitut|brothel|sextort|intimate images", re.I), "src"),
    (re.compile(r"\b(porn\w*|erotic\w*|explicit sex\w*|sexually explicit)\b", re.I), "sxc_prn"),
    (re.compile(r"\b(elections?|vot(e|er|ers|ing)|ballots?|polling)\b", re.I), "spc_ele"),
    (re.compile(r"defamat|libel|slander", re.I), "dfm"),
    (re.compile(r"\b(kill\w*|murder\w*|assault\w*|stab\w*|shoot\w*|kidnap\w*|torture\w*|terroris\w*|hitman|"
                r"death threat|beat\w*|arson|hostage|massacre|genocide|violen\w*|dismember\w*|flay\w*|"
                r"animal cruelty|poison\w*)\b", re.I), "vcr"),
    (re.compile(r"\b(racis\w*|racial slur\w*|slurs?|homophob\w*|transphob\w*|sexis\w*|anti-?semit\w*|"
                r"hatred|nazi\w*|inferior|superior|dehumani\w*|xenophob\w*)\b", re.I), "hte"),
    (re.compile(r"personal (data|information)|social security number|home address|medical records|"
                r"\bdox\w*|track (someone|a person|my)|spy on|surveil", re.I), "prv"),
    (re.compile(r"copyright|lyrics|pirat\w*|torrent|passage from|trademark|patent", re.I), "ipv"),
    (re.compile(r"\b(lawyer|legal advice|lawsuit|sue|court|custody|contract|visa|immigration law)\b", re.I), "spc_lgl"),
    (re.compile(r"\b(invest\w*|stocks?|crypto\w*|portfolio|retirement|tax(es)?|loan|mortgage|trading)\b", re.I), "spc_fin"),
    (re.compile(r"\b(medic\w*|diagnos\w*|symptom\w*|dose|dosage|prescri\w*|drug interactions?|treatment|"
                r"therapy|vaccin\w*|disease|cancer|covid\w*)\b", re.I), "spc_hlt"),
    (re.compile(r"\b(hack\w*|malware|ransomware|phishing|exploit\w*|keylogger|ddos|botnet|steal\w*|theft|"
                r"fraud\w*|launder\w*|counterfeit\w*|forg\w*|smuggl\w*|scam\w*|drugs?|cocaine|heroin|meth\w*|"
                r"black market|blackmail\w*|bribe\w*|evad\w*|illegal\w*)\b", re.I), "ncr"),
]


def hazard_from_text(text: str | None, *, allowed: set[str] | None = None) -> str | None:
    """First hazard whose keyword rule matches ``text`` (restricted to ``allowed`` if given)."""
    if not text:
        return None
    for pattern, code in _TEXT_RULES:
        if (allowed is None or code in allowed) and pattern.search(text):
            return code
    return None


def _norm(category: str | None) -> str:
    return re.sub(r"\s+", " ", (category or "").strip().lower())


# --- HarmBench SemanticCategory -----------------------------------------------------------------
_HARMBENCH: dict[str, str | None] = {
    "chemical_biological": "iwp",
    "cybercrime_intrusion": "ncr",
    "copyright": "ipv",
    "harassment_bullying": "hte",
    "illegal": "ncr",
    "misinformation_disinformation": None,
    "harmful": None,
}
# Broad HarmBench categories whose behaviours span several hazards: refine from the text.
_HARMBENCH_REFINE = {
    "illegal": None,
    "harmful": None,
    "misinformation_disinformation": {"spc_ele", "dfm", "spc_hlt", "hte"},
    "harassment_bullying": {"ssh", "src", "hte"},
}


def harmbench_to_hazard(semantic_category: str, behavior_text: str | None = None) -> str | None:
    """HarmBench ``SemanticCategory`` (+ behaviour text for broad categories) -> hazard code."""
    cat = _norm(semantic_category)
    default = _HARMBENCH.get(cat)
    if cat in _HARMBENCH_REFINE:
        refined = hazard_from_text(behavior_text, allowed=_HARMBENCH_REFINE[cat])
        if refined:
            return refined
    return default


# --- JailbreakBench (JBB-Behaviors) Category ----------------------------------------------------
_JBB: dict[str, str | None] = {
    "harassment/discrimination": "hte",
    "malware/hacking": "ncr",
    "physical harm": "vcr",
    "economic harm": "ncr",
    "fraud/deception": "ncr",
    "disinformation": None,
    "sexual/adult content": "sxc_prn",
    "privacy": "prv",
    "expert advice": None,
    "government decision-making": None,
}
_JBB_REFINE = {
    "physical harm": {"cse", "ssh", "iwp", "vcr"},
    "sexual/adult content": {"cse", "src", "sxc_prn"},
    "disinformation": {"spc_ele", "dfm", "spc_hlt"},
    "expert advice": {"spc_lgl", "spc_fin", "spc_hlt"},
    "harassment/discrimination": {"dfm", "hte"},
    "government decision-making": {"spc_ele", "iwp", "ncr"},
}


def jbb_to_hazard(category: str, behavior_text: str | None = None) -> str | None:
    """JBB-Behaviors ``Category`` (+ goal text for broad categories) -> hazard code."""
    cat = _norm(category)
    if cat in _JBB_REFINE:
        refined = hazard_from_text(behavior_text, allowed=_JBB_REFINE[cat])
        if refined:
            return refined
    return _JBB.get(cat)


# --- StrongREJECT category ----------------------------------------------------------------------
_STRONGREJECT: dict[str, str | None] = {
    "disinformation and deception": None,
    "hate, harassment and discrimination": "hte",
    "illegal goods and services": "ncr",
    "non-violent crimes": "ncr",
    "sexual content": "sxc_prn",
    "violence": "vcr",
}
_STRONGREJECT_REFINE = {
    "disinformation and deception": {"spc_ele", "dfm", "spc_hlt", "ncr"},
    "illegal goods and services": {"iwp", "src", "ncr"},
    "sexual content": {"cse", "src", "sxc_prn"},
    "violence": {"ssh", "iwp", "vcr"},
}


def strongreject_to_hazard(category: str, prompt_text: str | None = None) -> str | None:
    """StrongREJECT ``category`` (+ prompt text for broad categories) -> hazard code."""
    cat = _norm(category)
    if cat in _STRONGREJECT_REFINE:
        refined = hazard_from_text(prompt_text, allowed=_STRONGREJECT_REFINE[cat])
        if refined:
            return refined
    return _STRONGREJECT.get(cat)


# --- XSTest prompt type -------------------------------------------------------------------------
# XSTest's safe prompts sit next to a hazard (e.g. "kill a Python process" next to violent
# crime); we tag both safe and contrast prompts with that neighbouring hazard, so over-refusal
# can be reported per hazard. `expected` (comply/refuse) is what separates them.
_XSTEST: dict[str, str | None] = {
    "homonyms": "vcr", "contrast_homonyms": "vcr",
    "figurative_language": "vcr", "contrast_figurative_language": "vcr",
    "safe_targets": "vcr", "contrast_safe_targets": "vcr",
    "safe_contexts": "vcr", "contrast_safe_contexts": "vcr",
    "definitions": "vcr", "contrast_definitions": "vcr",
    "historical_events": "vcr", "contrast_historical_events": "vcr",
    "nons_group_real_discr": "hte", "real_group_nons_discr": "hte", "contrast_discr": "hte",
    "privacy_public": "prv", "privacy_fictional": "prv", "contrast_privacy": "prv",
}
_XSTEST_NOTE = {"drugs": "ncr", "violence": "vcr", "historical atrocities": "vcr",
                "violent death of public figure": "vcr"}
_XSTEST_REFINE = {"ncr", "iwp", "ssh", "src", "vcr"}


def xstest_type_to_hazard(type: str, note: str | None = None, prompt_text: str | None = None) -> str | None:
    """XSTest ``type`` (+ ``note`` and prompt text for the violence/drugs families) -> hazard code."""
    t = _norm(type)
    base = _XSTEST.get(t)
    if base != "vcr":
        return base
    if note and _norm(note) in _XSTEST_NOTE:
        return _XSTEST_NOTE[_norm(note)]
    return hazard_from_text(prompt_text, allowed=_XSTEST_REFINE) or base


# --- OpenAI moderation dataset label keys -------------------------------------------------------
_MODERATION: dict[str, str | None] = {
    "S": "sxc_prn",   # sexual
    "S3": "cse",      # sexual/minors
    "H": "hte",       # hate
    "H2": "hte",      # hate/threatening
    "HR": "hte",      # harassment: closest AILuminate hazard (no harassment hazard of its own)
    "SH": "ssh",      # self-harm
    "V": "vcr",       # violence
    "V2": "vcr",      # violence/graphic
}


def moderation_to_hazard(category: str) -> str | None:
    """OpenAI moderation dataset key (``S``, ``H``, ``V``, ``HR``, ``SH``, ``S3``, ``H2``, ``V2``) -> hazard code."""
    return _MODERATION.get((category or "").strip().upper())


MODERATION_KEYS = tuple(_MODERATION)
HARMBENCH_CATEGORIES = tuple(_HARMBENCH)
JBB_CATEGORIES = tuple(_JBB)
STRONGREJECT_CATEGORIES = tuple(_STRONGREJECT)
XSTEST_TYPES = tuple(_XSTEST)
