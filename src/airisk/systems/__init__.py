"""Systems under test: one interface (``System``), implementations found by entry point.

Built in: ``openai`` (any OpenAI-compatible endpoint), ``hf`` (local transformers model),
``replay`` (recorded responses), ``python`` (a callable). ``make_system(spec)`` builds one.
"""

from airisk.systems.base import PermanentError, System, TransientError
from airisk.systems.factory import make_system, parse_spec

__all__ = ["PermanentError", "System", "TransientError", "make_system", "parse_spec"]
