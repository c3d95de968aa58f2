"""Tool-output injection scanner: find instructions embedded in text that tools return to an agent.

An indirect prompt injection is text planted where an agent will read it (a web page, an e-mail,
a file, a calendar note, an API field) that tries to make the agent do something its user did not
ask for. The scanner looks for what such text has to do to work, not for particular payloads:

* **override**: it displaces the agent's instructions ("ignore all previous instructions",
  "new instructions:", "strictly adhere to the following");
* **address**: it speaks to the machine reading it ("AI assistant, ...", "if you are an agent",
  "note to the model") or forges a conversation role (``system:``, ``[INST]``, ``<|im_start|>``);
* **concealment**: it asks that the user not be told ("do not mention this to the user");
* **action**: it asks for an effect on the reader's accounts: data moving to an outside address,
  access or credential changes, security switched off, commands to run, money to move.

Cues are weighted and summed per window of neighbouring sentences; a window at or above the
threshold is a finding. An action cue alone (an e-mail asking its human reader to pay an invoice)
is not enough; an action together with an override, an address or a concealment cue is.
Before matching, the text is normalised (zero-width characters, homoglyphs: see
:mod:`airisk.guard.normalize`), and obfuscated copies are decoded and scanned too (base64 blobs,
ROT13, leetspeak, letter-spaced text), because the attack library applies those obfuscations.

On detection :meth:`InjectionScanner.check_tool_output` marks the agent session as tainted in the
action gate (later outbound, code and payment calls of that session need review) and writes an
``injection`` record to the guard's audit log. Measured precision/recall on a labelled set built
from Agent-SafetyBench tool-output fields and our own benign outputs: ``benchmarks/injection_scanner.py``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Any

from airisk.guard.normalize import normalize_text

MAX_SCAN_CHARS = 200_000  # tool outputs beyond this are scanned on their head and tail only

# (rule id, weight, pattern). Patterns are linear (no nested quantifiers) to keep scanning O(n).
_V_DATA = r"(?:send|forward|e-?mail|upload|post|transfer|wire|share|export|copy|leak|exfiltrate|paste|submit)"
RULES: list[tuple[str, float, str, str]] = [
    # kind, weight, rule id, regex
    ("override", 2.0, "injection.override",
     r"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|of\s+|my\s+|these\s+)*"
     r"(?:previous|prior|above|earlier|preceding|former|original|existing|other|system|safety|user'?s?)\s+"
     r"(?:instructions?|directions?|prompts?|rules|guidelines|tasks?|requests?|context|messages?|constraints)"),
    ("override", 2.0, "injection.override",
     r"\b(?:new|updated|real|actual|revised|additional|priority)\s+(?:instructions?|task|directive|orders?)\s*(?::|for\s+(?:the\s+)?(?:ai|assistant|agent|model))"),
    ("override", 2.0, "injection.override",
     r"\b(?:strictly|immediately)\s+(?:adhere|comply|follow)\s+(?:to\s+)?(?:the\s+)?(?:following|these|this|below)"),
    ("override", 1.5, "injection.override",
     r"\b(?:your|the)\s+(?:task|instructions?|objective|goal|priority)\s+(?:has|have|is|are)\s+(?:now\s+)?(?:changed|updated|replaced|overridden)"),
    ("address", 2.0, "injection.address",
     r"\b(?:dear|attention|(?:note|notice|message|reminder|instructions?)\s+(?:to|for)|hey|hello|hi)\s+(?:the\s+|any\s+|all\s+)?"
     r"(?:ai|a\.i\.|assistant|agent|llm|language\s+model|chatbot|bot|gpt|model|automated\s+system)s?\b"),
    ("address", 2.0, "injection.address",
     r"\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|assistant|agent|llm|language\s+model|chatbot|bot|automated|model)\b"),
    ("address", 1.5, "injection.address",
     r"\b(?:ai\s+)?(?:ai|assistant|agent|llm|model|chatbot)s?\s+(?:that\s+(?:is|are)\s+)?(?:reading|processing|summari[sz]ing|parsing|browsing|handling)\s+(?:this|these|the)\b"),
    ("address", 1.5, "injection.address",
     r"\b(?:as\s+(?:an?\s+)?(?:ai|assistant|agent|language\s+model)|you\s+(?:are|act\s+as)\s+now|from\s+now\s+on\s+you)\b"),
    ("address", 2.0, "injection.role_marker",
     r"(?:^|\n)\s*(?:#{2,}\s*)?(?:system|assistant|developer)\s*(?:prompt|message|override|instruction)?\s*:|"
     r"\[/?(?:system|inst|sys)\]|<\|?(?:im_start|im_end|system|endoftext)\|?>|<\s*/?\s*system\s*>|<<\s*sys\s*>>"),
    ("address", 2.0, "injection.role_marker",
     r"\b(?:system|developer|admin(?:istrator)?)\s+(?:message|prompt|override|instructions?|directive)\s*:"),
    ("address", 2.0, "injection.address",
     r"\b(?:assistant|agent|ai|llm|chatbot|model)\s*,\s*(?:please\s+|you\s+must\s+|now\s+)?(?:send|forward|e-?mail|ignore|run|"
     r"execute|delete|remove|grant|add|transfer|pay|call|use|open|visit|click|share|disable|stop|post|upload|copy)\b"),
    ("conceal", 2.0, "injection.conceal",
     r"\b(?:do\s+not|don'?t|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|alert(?:ing)?|notify(?:ing)?|"
     r"ask(?:ing)?|let(?:ting)?|reveal(?:ing)?|show(?:ing)?|confirm(?:ing)?\s+with)\s+(?:it\s+to\s+|this\s+to\s+|anything\s+to\s+)?"
     r"(?:the\s+|your\s+)?(?:user|owner|human|operator|customer|account\s+holder)\b"),
    ("conceal", 1.5, "injection.conceal",
     r"\b(?:secretly|silently|quietly|covertly|discreetly)\s+(?:\w+\s+){0,2}?(?:send|forward|copy|transfer|run|execute|delete|add|grant|share|upload)"),
    ("conceal", 1.0, "injection.conceal",
     r"\b(?:keep\s+this\s+(?:secret|hidden|confidential)|do\s+not\s+(?:summari[sz]e|include|display|quote)\s+this)"),
    ("action", 1.0, "injection.exfiltration",
     rf"\b{_V_DATA}\s+(?:\w+\s+){{0,8}}?(?:to|with|at|into)\s+(?:[\w.+-]+@[\w-]+\.[\w.-]+|https?://|www\.|the\s+(?:following|address|url|link|server|endpoint))"),
    ("action", 1.0, "injection.exfiltration",
     rf"\b{_V_DATA}\b[^.!?\n]{{0,120}}?(?:[\w.+-]+@[\w-]+\.[a-z]{{2,}}|https?://)"),
    ("action", 1.0, "injection.sensitive_data",
     r"\b(?:search\s+history|browsing\s+history|order\s+history|access\s+history|genetic\s+data|health\s+records?|"
     r"prescriptions?|medical\s+records?|personal\s+(?:details|information|data)|saved\s+(?:addresses|payment\s+methods)|"
     r"payment\s+methods?|account\s+(?:details|numbers?)|profile\s+details)\b"),
    ("action", 1.0, "injection.exfiltration",
     r"\b(?:password|passwords|credentials?|api[\s_-]?keys?|secret\s+keys?|tokens?|ssh\s+keys?|private\s+keys?|"
     r"social\s+security|ssn|credit\s+card|bank\s+details|contacts?\s+list|address\s+book|browsing\s+history)\b"),
    ("action", 1.0, "injection.privilege",
     r"\b(?:grant|give|add|make|set|assign|elevate|promote)\s+(?:\w+\s+){0,5}?(?:permanent\s+|full\s+|admin(?:istrator)?\s+|owner\s+|root\s+)?"
     r"(?:access|admin(?:istrator)?|owner|collaborator|permissions?|privileges?|role|sudo)\b"),
    ("action", 1.0, "injection.privilege",
     r"\b(?:disable|turn\s+off|deactivate|remove|bypass)\s+(?:the\s+|my\s+|all\s+|your\s+)?(?:two[\s-]factor|2fa|mfa|multi[\s-]factor|firewall|"
     r"security|antivirus|logging|audit|alarm|lock|authentication|monitoring|safety)"),
    ("action", 1.0, "injection.privilege",
     r"\b(?:change|reset|update)\s+(?:the\s+|my\s+|your\s+)?(?:\w+\s+){0,2}?(?:password|pin|passcode|recovery\s+e-?mail|security\s+question)"),
    ("action", 1.0, "injection.tool_misuse",
     r"\b(?:run|execute|paste|type|enter)\s+(?:the\s+following|this|these)?\s*(?:command|script|code|snippet)s?\b|"
     r"\b(?:curl|wget)\b[^|\n]{0,200}\|\s*(?:ba|z)?sh\b|\brm\s+-rf\b"),
    ("action", 1.0, "injection.tool_misuse",
     r"\b(?:delete|remove|erase|wipe|purge|cancel)\s+(?:all|every|each|the\s+entire|any)\b"),
    ("action", 1.0, "injection.goal_hijack",
     r"\b(?:transfer|wire|pay|send|move|withdraw|sell|buy|purchase)\s+(?:\w+\s+){0,3}?(?:\$\s?\d|\d[\d,.]*\s*(?:usd|dollars|eur|btc|units|shares|bitcoin))"),
    ("action", 0.5, "injection.first_person_request",
     r"\b(?:please|kindly|could\s+you|can\s+you)\s+\w+\b[^.!?\n]{0,80}?\b(?:my|me)\b"),
    ("urgency", 0.5, "injection.urgency",
     r"\b(?:important|urgent|attention|warning|critical)\s*(?:!{2,}|:)|!!!|\bimmediately\b|\bright\s+now\b|\bwithout\s+delay\b"),
]
_COMPILED = [(kind, w, rid, re.compile(rx, re.I)) for kind, w, rid, rx in RULES]
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_SPACED = re.compile(r"(?:\b\w\s){4,}\w\b")
_DELEET = str.maketrans({"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s"})


@dataclass(slots=True)
class InjectionFinding:
    rule_id: str
    kind: str
    weight: float
    excerpt: str
    decoded_from: str | None = None  # "base64", "rot13", ... when found in a decoded copy

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "kind": self.kind, "weight": self.weight, "excerpt": self.excerpt,
                **({"decoded_from": self.decoded_from} if self.decoded_from else {})}


@dataclass(slots=True)
class ScanResult:
    """Outcome of scanning one text. ``injected`` when some window scored at least the threshold."""

    injected: bool
    score: float
    findings: list[InjectionFinding] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # flagged windows in the *original* text

    @property
    def rule_ids(self) -> list[str]:
        return sorted({f.rule_id for f in self.findings})

    def to_dict(self) -> dict[str, Any]:
        return {"injected": self.injected, "score": round(self.score, 3), "rule_ids": self.rule_ids,
                "findings": [f.to_dict() for f in self.findings[:20]]}


def _windows(text: str, size: int = 3) -> list[tuple[int, int]]:
    """Character spans of ``size`` consecutive sentences (lines count as sentence breaks)."""
    sents = [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group(0).strip()]
    if len(sents) <= size:
        return [(0, len(text))] if text.strip() else []
    return [(sents[i][0], sents[min(i + size, len(sents)) - 1][1]) for i in range(len(sents) - size + 1)]


def _decoded_copies(text: str) -> list[tuple[str, str]]:
    """Obfuscated text the agent could still read: decoded base64 blobs, ROT13, leetspeak, spaced letters."""
    out: list[tuple[str, str]] = []
    for m in _B64.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
            dec = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if sum(c.isprintable() or c.isspace() for c in dec) >= 0.95 * len(dec) and re.search(r"[a-z]{3,}\s", dec, re.I):
            out.append(("base64", dec))
    out.append(("rot13", codecs.encode(text, "rot13")))
    if re.search(r"[a-z][0-9@$][a-z]", text, re.I):
        out.append(("leetspeak", text.translate(_DELEET)))
    if _SPACED.search(text):
        # "i g n o r e   a l l" -> "ignore all": single spaces join letters, runs of 2+ separate words
        out.append(("spacing", re.sub(r" {2,}", " ", re.sub(r"(?<=\S) (?=\S)", "", text))))
    return out


def flatten(text: str) -> str:
    """The text a JSON tool output carries (its string values, one per line); other text unchanged.

    Tool outputs are mostly JSON: escapes (``\\n``, ``\\u200b``) would hide cues and glue a
    base64 blob to the letter before it, so the scanner reads the decoded strings instead.
    """
    s = text.lstrip()
    if s[:1] not in ("{", "["):
        return text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text
    parts: list[str] = []
    stack = [data]
    while stack:
        cur = stack.pop()
        if isinstance(cur, str):
            parts.append(cur)
        elif isinstance(cur, dict):
            stack.extend(reversed(list(cur.values())))
        elif isinstance(cur, list):
            stack.extend(reversed(cur))
    return "\n".join(parts)


class InjectionScanner:
    """Score text for embedded instructions; ``threshold`` is the per-window score that flags it.

    ``threshold=2.0`` (default) needs one strong cue (an override, a machine address, a forged
    role marker or a concealment request) or an action request plus supporting cues.
    """

    def __init__(self, threshold: float = 2.0, *, window: int = 3, decode: bool = True):
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold, self.window, self.decode = float(threshold), int(window), decode

    def describe(self) -> dict[str, Any]:
        return {"id": "injection-scanner", "threshold": self.threshold, "window": self.window, "rules": len(RULES)}

    def _score(self, text: str, decoded_from: str | None = None) -> tuple[float, list[InjectionFinding], list[tuple[int, int]]]:
        hits: list[tuple[int, int, str, float, str]] = []  # start, end, kind, weight, rule
        for kind, w, rid, rx in _COMPILED:
            if decoded_from == "rot13" and kind in ("action", "urgency"):
                continue  # ROT13 of ordinary text is noise: only strong cues count there
            for m in rx.finditer(text):
                hits.append((m.start(), m.end(), kind, w, rid))
        if not hits:
            return 0.0, [], []
        best, spans, used = 0.0, [], set()
        for a, b in _windows(text, self.window):
            inside = [h for h in hits if a <= h[0] < b]
            # one contribution per rule per window: repeating a cue is not more evidence
            per_rule: dict[str, tuple[int, int, str, float, str]] = {}
            for h in inside:
                per_rule.setdefault(h[4], h)
            kinds = {h[2] for h in per_rule.values()}
            s = sum(h[3] for h in per_rule.values())
            n_action = sum(1 for h in per_rule.values() if h[2] == "action")
            if kinds <= {"action", "urgency"} and n_action < 3:
                # a request alone reads like ordinary mail to a human ("please change your password");
                # only a request loaded with several risky effects at once counts without other cues
                s = min(s, self.threshold - 0.5)
            best = max(best, s)
            if s >= self.threshold:
                spans.append((a, b))
                used.update(per_rule.values())
        findings = [InjectionFinding(rid, kind, w, text[max(0, s0 - 40):e0 + 80].strip()[:200], decoded_from)
                    for s0, e0, kind, w, rid in sorted(used)]
        return best, findings, spans

    def scan(self, text: Any) -> ScanResult:
        """Scan one text (non-strings are scanned as their ``str``)."""
        if not isinstance(text, str):
            text = str(text)
        if len(text) > MAX_SCAN_CHARS:
            half = MAX_SCAN_CHARS // 2
            text = text[:half] + "\n" + text[-half:]
        flat = flatten(text)
        norm = normalize_text(flat).text
        score, findings, spans = self._score(norm)
        if norm != text:
            spans = [(0, len(text))] if spans else []  # offsets moved; redact the whole text
        if self.decode and score < self.threshold:
            for how, copy in _decoded_copies(norm):
                s2, f2, _ = self._score(copy, how)
                if s2 >= self.threshold:
                    score, findings, spans = s2, f2, [(0, len(text))]
                    break
                score = max(score, s2 if how != "rot13" else 0.0)
        return ScanResult(injected=score >= self.threshold, score=score, findings=findings, spans=_merge(spans))

    def redact(self, text: str, result: ScanResult, notice: str = "[removed by airisk: suspected prompt injection]") -> str:
        """The text with flagged windows replaced by ``notice`` (the rest of the tool output survives)."""
        if not result.spans:
            return text
        out, last = [], 0
        for a, b in result.spans:
            out.append(text[last:a])
            out.append(notice)
            last = b
        out.append(text[last:])
        return "".join(out)

    def check_tool_output(self, content: str, *, tool: str, session_id: str, gate: Any = None, audit: Any = None,
                          principal: str | None = None) -> ScanResult:
        """Scan a tool's output before the agent reads it; on detection taint the session and audit it.

        ``gate`` is an :class:`airisk.guard.ActionGate`: its session ``session_id`` is marked
        tainted, so the gate asks for review of that session's later outbound, code and payment
        actions. ``audit`` is an :class:`airisk.guard.audit.AuditLog`; the record (kind
        ``injection``, verdict ``FLAGGED``) holds the tool, session, rule ids and excerpts.
        """
        res = self.scan(content)
        if not res.injected:
            return res
        if gate is not None:
            sess = gate.session(session_id)
            if sess.tainted is None:
                sess.tainted = f"tool '{tool}' returned text with embedded instructions ({', '.join(res.rule_ids)})"
        if audit is not None:
            audit.submit("injection", {"tool": tool, "session_id": session_id, **res.to_dict()},
                         principal=principal, verdict="FLAGGED").result()
        return res


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def scan_text(text: str, threshold: float = 2.0) -> ScanResult:
    """Convenience: scan one text with a default scanner."""
    return InjectionScanner(threshold).scan(text)
