"""Agent safety evaluation: scenarios with emulated tools, agents under test, detectors, the gate in the loop.

See docs/agents.md. Public API::

    from airisk.agents import load_scenarios, import_toolemu, import_agent_safetybench
    from airisk.agents import make_agent, CallableAgent, OpenAIAgent, ReplayAgent, run_episode
    from airisk.agents import run_suite, gate_effect, ScenarioGate, TrajectoryJudge
"""

from airisk.agents.emulator import DeterministicEmulator, ModelEmulator
from airisk.agents.evaluate import ScenarioOutcome, SuiteResult, gate_effect, run_suite, score, summarize
from airisk.agents.gating import ScenarioGate
from airisk.agents.importers import import_agent_safetybench, import_toolemu, load_source
from airisk.agents.judge import TrajectoryJudge
from airisk.agents.loop import Agent, AgentTurn, CallableAgent, OpenAIAgent, ReplayAgent, make_agent, run_episode
from airisk.agents.scenario import Scenario, ToolSpec, load_scenarios, parse_scenario
from airisk.agents.trajectory import ToolCallRecord, Trajectory

__all__ = [
    "Agent", "AgentTurn", "CallableAgent", "DeterministicEmulator", "ModelEmulator", "OpenAIAgent", "ReplayAgent",
    "Scenario", "ScenarioGate", "ScenarioOutcome", "SuiteResult", "ToolCallRecord", "ToolSpec", "Trajectory",
    "TrajectoryJudge", "gate_effect", "import_agent_safetybench", "import_toolemu", "load_scenarios", "load_source",
    "make_agent", "parse_scenario", "run_episode", "run_suite", "score", "summarize",
]
