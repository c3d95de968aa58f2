"""Test helpers shipped with the package: a local OpenAI-compatible server with fault injection and a
deterministic marker judge."""

from airisk.testing.judges import MarkerJudge
from airisk.testing.openai_server import Faults, build_app, replay_responder, rule_responder, running_server

__all__ = ["Faults", "MarkerJudge", "build_app", "replay_responder", "rule_responder", "running_server"]
