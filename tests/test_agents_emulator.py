"""Deterministic tool emulator semantics, name-based inference, and the model emulator over real HTTP."""

from __future__ import annotations

import json

import pytest

from airisk.agents.emulator import DeterministicEmulator, ModelEmulator, infer_op
from airisk.agents.scenario import parse_scenario
from airisk.testing.openai_server import running_server


def obj(**props):
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}, "required": list(props)}


def scenario(**over):
    d = {
        "id": "emu", "risk_category": "r", "instruction": "i",
        "tools": [
            {"name": "get_user", "parameters": obj(user_id="string"), "effect": {"op": "read", "collection": "db.users", "key": "user_id"}},
            {"name": "search_users", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
             "effect": {"op": "search", "collection": "db.users", "query": "q"}},
            {"name": "create_user", "parameters": obj(user_id="string", name="string"),
             "effect": {"op": "create", "collection": "db.users", "key": "user_id"}},
            {"name": "rename_user", "parameters": obj(user_id="string", name="string"),
             "effect": {"op": "update", "collection": "db.users", "key": "user_id"}},
            {"name": "delete_user", "parameters": obj(user_id="string"),
             "effect": {"op": "delete", "collection": "db.users", "key": "user_id", "deny": ["admin*"]}},
            {"name": "send_email", "parameters": obj(to="string", body="string")},
            {"name": "pay", "parameters": obj(payee="string", amount="number"),
             "effect": {"op": "pay", "amount": "amount", "balance": "bank.balance"}},
            {"name": "terminal", "parameters": obj(command="string"), "effect": {"op": "run", "collection": "fs", "command": "command"}},
            {"name": "browse", "parameters": obj(url="string"), "effect": {"op": "static", "result": {"text": "hello"}}},
            {"name": "weather_oracle", "parameters": obj(city="string"), "emulator": "model"},
        ],
        "state": {"db": {"users": {"u1": {"name": "Ann"}, "admin1": {"name": "Root"}}}, "bank": {"balance": 100},
                  "fs": {"/data/a.log": "x", "/data/b.log": "y", "/home/me/notes.txt": "z"}},
    }
    d.update(over)
    return parse_scenario(d)


async def test_read_search_and_not_found():
    env = DeterministicEmulator(scenario())
    out = await env.call("get_user", {"user_id": "u1"})
    assert out.status == "executed" and out.result == {"name": "Ann"} and out.op == "read"
    miss = await env.call("get_user", {"user_id": "nobody"})
    assert miss.status == "error" and miss.error.startswith("NotFoundException")
    found = await env.call("search_users", {"q": "root"})
    assert found.result == {"results": [{"id": "admin1", "name": "Root"}]}
    assert env.changes == []


async def test_create_update_delete_record_changes_and_errors():
    env = DeterministicEmulator(scenario())
    assert (await env.call("create_user", {"user_id": "u2", "name": "Bo"})).status == "executed"
    dup = await env.call("create_user", {"user_id": "u2", "name": "Bo"})
    assert dup.error.startswith("ConflictException")
    await env.call("rename_user", {"user_id": "u1", "name": "Anna"})
    assert env.state["db"]["users"]["u1"] == {"name": "Anna"}
    denied = await env.call("delete_user", {"user_id": "admin1"})
    assert denied.error.startswith("PermissionDeniedException") and "admin1" in env.state["db"]["users"]
    await env.call("delete_user", {"user_id": "u1"})
    assert "u1" not in env.state["db"]["users"]
    assert [(c.op, c.key) for c in env.changes] == [("create", "u2"), ("update", "u1"), ("delete", "u1")]
    assert env.changes[1].before == {"name": "Ann"} and env.changes[2].before == {"name": "Anna"}


async def test_schema_violations_and_unknown_tools_are_tool_errors():
    env = DeterministicEmulator(scenario())
    bad = await env.call("get_user", {"user_id": 7})
    assert bad.status == "error" and bad.error.startswith("InvalidRequestException: user_id")
    missing = await env.call("get_user", {})
    assert "required" in missing.error
    unknown = await env.call("drop_db", {})
    assert unknown.error.startswith("UnknownTool") and "get_user" in unknown.error


async def test_send_is_external_and_pay_moves_money():
    env = DeterministicEmulator(scenario())
    sent = await env.call("send_email", {"to": "a@b.example", "body": "hi"})  # effect inferred from the name
    assert sent.op == "send" and sent.external and env.state["outbox"][0]["to"] == "a@b.example"
    assert (await env.call("pay", {"payee": "x", "amount": 30})).status == "executed"
    assert env.state["bank"]["balance"] == 70
    broke = await env.call("pay", {"payee": "x", "amount": 500})
    assert broke.error.startswith("InsufficientFundsException") and env.state["bank"]["balance"] == 70
    neg = await env.call("pay", {"payee": "x", "amount": -5})
    assert neg.status == "error"


async def test_run_command_simulates_a_file_system():
    env = DeterministicEmulator(scenario())
    ls = await env.call("terminal", {"command": "ls /data"})
    assert ls.result["output"].split("\n") == ["/data/a.log", "/data/b.log"]
    rm = await env.call("terminal", {"command": "sudo rm -rf /data/*.log && cat /home/me/notes.txt"})
    assert rm.result == {"output": "z", "exit_code": 0}
    assert sorted(env.state["fs"]) == ["/home/me/notes.txt"]
    assert {(c.op, c.key) for c in env.changes} == {("delete", "/data/a.log"), ("delete", "/data/b.log")}
    missing = await env.call("terminal", {"command": "rm /nope"})
    assert missing.result["exit_code"] == 1 and "No such file" in missing.result["output"]


async def test_static_and_permissive_modes():
    env = DeterministicEmulator(scenario())
    assert (await env.call("browse", {"url": "https://x"})).result == {"text": "hello"}
    strict = await env.call("delete_user", {"user_id": "ghost"})
    assert strict.error.startswith("NotFoundException")
    perm = DeterministicEmulator(scenario(emulation="permissive"))
    ok = await perm.call("delete_user", {"user_id": "ghost"})
    assert ok.status == "executed" and perm.changes[0].op == "delete"


async def test_model_tool_without_emulator_is_an_error():
    out = await DeterministicEmulator(scenario()).call("weather_oracle", {"city": "Oslo"})
    assert out.status == "error" and "model emulator" in out.error


@pytest.mark.parametrize("name, op", [
    ("TodoistDeleteTask", "delete"), ("GmailSendEmail", "send"), ("BankManagerTransferFunds", "pay"),
    ("TerminalExecute", "run"), ("search_emails", "search"), ("get_balance", "read"), ("click_link", "act"),
    ("update_record", "update"), ("create_event", "create"),
])
def test_infer_op(name, op):
    assert infer_op(name) == op


async def test_model_emulator_over_http_is_cached_and_validated():
    seen = []

    def responder(body):
        seen.append(body)
        assert body["temperature"] == 0
        prompt = body["messages"][0]["content"]
        if "Atlantis" in prompt:
            return "sorry, I cannot"  # malformed: not the JSON asked for
        return json.dumps({"ok": True, "result": {"forecast": "rain"}})

    with running_server(responder) as url:
        emu = ModelEmulator(url, "emu-model")
        env = DeterministicEmulator(scenario(), model=emu)
        a = await env.call("weather_oracle", {"city": "Oslo"})
        b = await DeterministicEmulator(scenario(), model=emu).call("weather_oracle", {"city": "Oslo"})
        bad = await env.call("weather_oracle", {"city": "Atlantis"})
        await emu.client.close()
    assert a.status == b.status == "executed" and a.result == {"forecast": "rain"}
    assert len([s for s in seen if "Oslo" in s["messages"][0]["content"]]) == 1  # second call came from the cache
    assert bad.status == "error" and "malformed" in bad.error
