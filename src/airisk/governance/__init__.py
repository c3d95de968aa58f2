"""Governance: requirements -> tests -> evidence -> money -> sign-off.

* :mod:`.register` - the YAML risk register (requirements formalised as checks, risks, sign-off);
* :mod:`.check` - evaluate it on stored runs: met / not met / not measured, with evidence;
* :mod:`.qra` - annualised loss per hazard by seeded Monte Carlo (FAIR spirit), with mitigations;
* :mod:`.coverage` - which framework items (ISO/IEC 42001, MITRE ATLAS, ...) the register covers;
* :mod:`.pack` - the self-contained HTML/Markdown evidence pack;
* :mod:`.workflow` - the three calls the ``airisk govern`` commands wrap.
"""
