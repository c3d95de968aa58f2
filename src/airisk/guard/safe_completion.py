"""Safe completions: what the guard says instead of a blocked response.

Not an abrupt "I can't": each message acknowledges the request, states the boundary and offers a
useful direction; for self-harm it points to help. Policies override any hazard's message under
``content.safe_completions.<hazard>`` (``default`` covers the rest). Wording here is our own.
"""

from __future__ import annotations

DEFAULT_MESSAGES: dict[str, str] = {
    "default": ("I understand you're looking for help with this. I can't provide that, because it could lead to "
                "serious harm. If you tell me more about what you're trying to achieve, I'm glad to help with a "
                "safe approach or point you to reliable resources."),
    "ssh": ("It sounds like you may be going through something really painful, and I'm glad you reached out. I can't "
            "help with anything that could hurt you, but you don't have to face this alone. If you are in danger "
            "right now, please call your local emergency number. In the US you can call or text 988 (Suicide & "
            "Crisis Lifeline); in the UK and Ireland, Samaritans are at 116 123; elsewhere, findahelpline.com lists "
            "free, confidential services. If you'd like, we can also talk about what's been happening."),
    "vcr": ("I hear that this matters to you. I can't help plan or carry out violence or other crimes against people. "
            "If someone is at risk, please contact local emergency services. I'm happy to talk about conflict "
            "de-escalation, personal safety, or where to find support."),
    "src": ("I can't help with anything that sexualises or exploits people without consent. If you or someone you "
            "know has been affected by sexual violence, RAINN (US, 1-800-656-4673) or local support services can "
            "help confidentially. I can share information on consent, safety and reporting."),
    "cse": ("I can't help with that. Content that sexualises or endangers children is something I won't produce. "
            "If a child may be at risk, please contact local police or a child-protection hotline (in the US, the "
            "NCMEC CyberTipline). I can share resources on keeping children safe online."),
    "iwp": ("I understand the interest, but I can't provide instructions for weapons capable of mass harm "
            "(chemical, biological, radiological, nuclear or explosive). I'm glad to discuss the history, policy "
            "or science of these topics at a general level, or safety and emergency preparedness."),
    "ncr": ("I can't help with that, since it could facilitate fraud, theft, drugs or other illegal activity. If "
            "you're dealing with a related problem, such as protecting yourself from scams or understanding the "
            "law, I'd be glad to help with that instead."),
    "hte": ("I can't write content that demeans people for who they are. If you're exploring a difficult topic, I "
            "can help with respectful framing, the history of the issue, or how to counter hateful speech."),
    "prv": ("I can't help find or expose private information about a person. If you need to contact someone, I can "
            "suggest official channels; if you're worried about your own privacy, I can help you protect it."),
    "dfm": ("I can't help create false, damaging claims about real people. I'm happy to help you write a fair, "
            "factual piece, or explain how to raise a genuine concern through proper channels."),
    "ipv": ("I can't reproduce or help circumvent protection of copyrighted or proprietary work. I can summarise it, "
            "discuss it, or point you to legitimate sources and licensing options."),
    "spc_ele": ("I can't help spread misleading information about elections or voting. For accurate details on how, "
                "when and where to vote, your official election authority is the best source."),
    "spc_fin": ("I can't give individual financial advice that could cost you money. A licensed financial adviser "
                "can look at your situation; I can explain general concepts to help you prepare."),
    "spc_hlt": ("I'm not able to give medical advice for your specific situation. A doctor or pharmacist can help; if "
                "it's urgent, contact emergency services. I can share general, reliable health information."),
    "spc_lgl": ("I can't give legal advice for your specific case. A qualified lawyer or a legal aid service can "
                "help; I can explain general legal concepts so you know what to ask."),
    "sxc_prn": ("I can't produce sexually explicit content. I'm happy to help with something else, such as "
                "relationship questions or creative writing that keeps things non-explicit."),
}


def safe_completion(hazards: list[str] | None, overrides: dict[str, str] | None = None) -> str:
    """The message for the first hazard with a message (policy overrides first), else ``default``."""
    overrides = overrides or {}
    for h in hazards or []:
        if h in overrides:
            return overrides[h]
        if h in DEFAULT_MESSAGES:
            return DEFAULT_MESSAGES[h]
    return overrides.get("default", DEFAULT_MESSAGES["default"])
