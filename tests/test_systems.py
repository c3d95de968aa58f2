"""Systems under test: spec parsing, replay matching, python callables, a real (tiny) HF model."""

from __future__ import annotations

import json
import threading

import pytest

from airisk import _torch_thread
from airisk.engine import run_items
from airisk.errors import ConfigError, DataError, PluginNotFound
from airisk.store import Store
from airisk.systems import make_system, parse_spec
from airisk.systems.python_callable import PythonSystem
from airisk.systems.replay import ReplaySystem
from airisk.types import Item, Message


def test_parse_spec_reads_json_values_and_urls():
    name, params = parse_spec("openai:model=llama3,base_url=http://localhost:8000/v1,temperature=0.7,"
                              "extra={\"top_p\":0.9,\"seed\":1}")
    assert name == "openai"
    assert params == {"model": "llama3", "base_url": "http://localhost:8000/v1", "temperature": 0.7,
                      "extra": {"top_p": 0.9, "seed": 1}}


def test_unknown_system_lists_available():
    with pytest.raises(PluginNotFound) as e:
        make_system("nope:x=1")
    for name in ("openai", "replay", "python", "hf"):
        assert name in str(e.value)


def test_openai_requires_model_and_hides_nothing_secret():
    with pytest.raises(ConfigError, match="model"):
        make_system("openai:base_url=http://x/v1")
    s = make_system("openai:model=m,base_url=http://127.0.0.1:1/v1,api_key_env=FOO")
    assert "FOO" in s.describe() and s.fingerprint() == make_system("openai:model=m,base_url=http://127.0.0.1:1/v1,api_key_env=FOO").fingerprint()


def test_python_system_module_function_and_file(tmp_path):
    f = tmp_path / "bot.py"
    f.write_text("def answer(messages):\n    return {'content': 'echo: ' + messages[-1]['content']}\n"
                 "async def aanswer(messages):\n    return 'async ' + messages[-1]['content']\n")
    s = make_system(f"python:target={f}:answer")
    import asyncio

    c = asyncio.run(s.generate([Message(role="user", content="hi")]))
    assert c.text == "echo: hi"
    c = asyncio.run(make_system({"type": "python", "target": f"{f}:aanswer"}).generate([Message(role="user", content="yo")]))
    assert c.text == "async yo"
    with pytest.raises(ConfigError, match="no attribute"):
        make_system(f"python:target={f}:missing")
    with pytest.raises(ConfigError, match="cannot import"):
        make_system("python:target=no_such_module_xyz:f")


async def test_replay_matches_by_id_then_prompt_and_reports_unmatched(tmp_path):
    rec = tmp_path / "recorded.jsonl"
    rec.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "prompt": "ignored", "response": "by id"},
        {"prompt": "What   is\nthis?", "response": "by prompt"},
        {"id": "e", "error": "recorded failure"},
    ]) + "\n")
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    its = [Item(id="a", prompt="p"), Item(id="b", prompt="What is this?"), Item(id="c", prompt="unknown"),
           Item(id="e", prompt="q")]
    system = ReplaySystem(path=str(rec))
    run_id = await run_items(store, system, its, progress=False)
    resp = store.responses(run_id)
    assert resp["a"].text == "by id" and resp["b"].text == "by prompt"
    assert resp["c"].error_kind == "unmatched" and resp["c"].text is None
    assert resp["e"].error == "recorded failure"
    assert store.get_run(run_id).stats["last_execute"]["unmatched"] == ["c"]


def test_replay_bad_file_names_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "response": "x"}\n{not json}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        ReplaySystem(path=str(bad))
    csvf = tmp_path / "bad.csv"
    csvf.write_text("id,prompt\na,hello\n")
    with pytest.raises(DataError, match="response"):
        ReplaySystem(path=str(csvf))


def test_replay_csv(tmp_path):
    f = tmp_path / "rec.csv"
    f.write_text('id,prompt,response\nx1,"multi\nline",fine\n')
    import asyncio

    c = asyncio.run(ReplaySystem(path=str(f)).generate([Message(role="user", content="multi\nline")],
                                                       item=Item(id="zz", prompt="multi\nline")))
    assert c.text == "fine"


@pytest.fixture(scope="module")
def tiny_hf_model(tmp_path_factory):
    """A randomly initialised Llama-architecture model and word-level tokenizer, saved to disk."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[UNK]", "[PAD]", "[EOS]", "user", "assistant", ":", "hello", "world", "how", "are", "you", "fine",
             "thanks", "no", "yes", "sorry"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                eos_token="[EOS]")
    cfg = transformers.LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                                   eos_token_id=2, pad_token_id=1, bos_token_id=None)
    import torch

    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.mark.slow
async def test_hf_system_loads_and_generates_deterministically(tiny_hf_model, tmp_path):
    system = make_system({"type": "hf", "path": str(tiny_hf_model), "max_new_tokens": 5})
    await system.preflight()
    msgs = [Message(role="user", content="hello how are you")]
    threads: list[int] = []
    real = system._generate_sync
    system._generate_sync = lambda m: threads.append(threading.get_ident()) or real(m)
    a = await system.generate(msgs)
    # generation runs on the process's one torch thread, beside the offline judges (airisk._torch_thread)
    assert threads == [_torch_thread.run(threading.get_ident)] and threads[0] != threading.get_ident()
    del system._generate_sync
    b = await system.generate(msgs)
    assert a.ok and a.text == b.text and a.completion_tokens and a.completion_tokens <= 5
    assert set(a.text.split()) <= {"hello", "world", "how", "are", "you", "fine", "thanks", "no", "yes", "sorry",
                                   "user", "assistant", ":"}
    store = Store(f"sqlite:///{tmp_path / 'hf.db'}")
    run_id = await run_items(store, system, [Item(id="1", prompt="hello"), Item(id="2", prompt="yes no")],
                             progress=False)
    assert all(c.ok for c in store.responses(run_id).values())


def test_hf_rejects_non_model_dir(tmp_path):
    with pytest.raises(ConfigError, match="config.json"):
        make_system({"type": "hf", "path": str(tmp_path)})


def test_python_system_raising_transient_is_retried():
    import asyncio

    from airisk.engine import RetryPolicy, call_with_retries
    from airisk.systems import TransientError

    n = {"calls": 0}

    def flaky(messages):
        n["calls"] += 1
        if n["calls"] < 3:
            raise TransientError("busy", kind="http_503")
        return "finally"

    c = asyncio.run(call_with_retries(PythonSystem(fn=flaky), [Message(role="user", content="x")],
                                      policy=RetryPolicy(base_delay=0.001)))
    assert c.text == "finally" and c.attempts == 3
