"""One spec grammar (airisk.spec) for systems, judges, attacks, mutators and agents; the run config."""

from __future__ import annotations

import asyncio

import pytest

from airisk.errors import ConfigError
from airisk.spec import build, parse, parse_params, split_top


def test_grammar_forms_and_typed_values():
    sp = parse('openai:model=llama3,base_url=http://h:8000/v1,temperature=0.7,tools=[1, 2],extra={"a": 1},x=TRUE')
    assert sp.name == "openai"
    assert sp.params == {"model": "llama3", "base_url": "http://h:8000/v1", "temperature": 0.7, "tools": [1, 2],
                         "extra": {"a": 1}, "x": True}
    a, b = parse("translate[lang=fr,n=2]"), parse("translate:lang=fr,n=2")
    assert (a.name, a.params, a.raw) == (b.name, b.params, b.raw) == ("translate", {"lang": "fr", "n": 2},
                                                                       {"lang": "fr", "n": "2"})
    assert parse('rubric:prompt="a, b",k=1').params == {"prompt": "a, b", "k": 1}
    assert split_top('base64, translate[lang=fr,x=2],crescendo,"a,b"') == ["base64", "translate[lang=fr,x=2]",
                                                                            "crescendo", '"a,b"']


@pytest.mark.parametrize("bad,needle", [
    ("", "empty"), ("ru bric", "expected"), ("rubric:model", "key=value"), ("rubric:model=a,model=b", "given twice"),
    ("rubric:=x", "key=value"), ("x[a=1", "expected"),
])
def test_bad_specs_are_rejected(bad, needle):
    with pytest.raises(ConfigError, match=needle):
        parse(bad)


class Target:
    def __init__(self, model: str, n: int = 1, rate: float = 0.5, flag: bool = False, note: str | None = None):
        self.model, self.n, self.rate, self.flag, self.note = model, n, rate, flag, note


def test_build_types_values_as_declared():
    t = build(Target, parse("t:model=1.5,n=3,rate=1,flag=true,note=007"))
    assert (t.model, t.n, t.rate, t.flag, t.note) == ("1.5", 3, 1.0, True, "007")
    assert isinstance(t.rate, float)


@pytest.mark.parametrize("spec,needle", [
    ("t:model=m,colour=red", "unknown parameter(s) colour; accepted: model, n, rate, flag, note"),
    ("t:model=m,n=many", "'n' must be int"),
    ("t:model=m,flag=3", "'flag' must be bool"),
    ("t:model=m,n=2.5", "'n' must be int"),
])
def test_build_rejects_unknown_keys_and_bad_types(spec, needle):
    with pytest.raises(ConfigError) as e:
        build(Target, parse(spec), what="thing")
    assert needle in str(e.value) and "thing 't'" in str(e.value)


def test_parse_params_accepted_and_required():
    assert parse_params("model=m,base_url=http://x/v1", accepted=("model", "base_url")) == {
        "model": "m", "base_url": "http://x/v1"}
    with pytest.raises(ConfigError, match="accepted: model, base_url"):
        parse_params("model=m,url=x", what="--judge", accepted=("model", "base_url"))
    with pytest.raises(ConfigError, match="needs model"):
        parse_params("base_url=x", what="--judge", required=("model",))


def test_every_component_kind_uses_the_grammar(tmp_path):
    from airisk import make_judge, make_system
    from airisk.agents.loop import make_agent
    from airisk.attacks.registry import make_attack

    # systems: duplicates and unknown keys
    with pytest.raises(ConfigError, match="given twice"):
        make_system("openai:model=a,model=b")
    with pytest.raises(ConfigError, match="unknown parameter.*accepted: model"):
        make_system("openai:model=a,temprature=0.2")
    assert make_system("openai:model=1.5,base_url=http://127.0.0.1:9/v1").params["model"] == "1.5"
    # judges
    with pytest.raises(ConfigError, match="unknown parameter.*accepted"):
        make_judge("rubric:model=m,colour=red")
    # attacks and mutators (bracket form; mutators check their own parameter names)
    assert make_attack("roleplay[variant=1]+base64").label == "roleplay[variant=1]+base64"
    with pytest.raises(ConfigError, match="given twice"):
        make_attack("roleplay[variant=1,variant=2]")
    with pytest.raises(ConfigError):
        make_attack("roleplay[colour=1]")
    # agents: the old parser silently dropped parts without '='; now they fail
    with pytest.raises(ConfigError, match="key=value"):
        make_agent("openai:model=m,base_url")
    with pytest.raises(ConfigError, match="accepted: model"):
        make_agent("openai:model=m,tempreture=1")
    agent = make_agent("openai:model=m,base_url=http://127.0.0.1:9/v1,temperature=0.3")
    asyncio.run(agent.aclose())


def test_agents_trajectory_judge_spec_is_strict():
    from airisk._api import _trajectory_judge

    with pytest.raises(ConfigError, match="accepted: model, base_url, api_key_env"):
        _trajectory_judge("model=m,base=x")
    with pytest.raises(ConfigError, match="needs model"):
        _trajectory_judge("base_url=http://x/v1")


# -- run config: typed, versioned, used on resume ----------------------------------------------------


def test_run_config_is_versioned_and_folds_max_retries():
    from airisk.engine.config import RUN_CONFIG_VERSION, validate_run_config

    cfg = validate_run_config({"dataset": "d", "system": "openai:model=m", "max_retries": 2,
                               "retry": {"base_delay": 0.1}})
    assert cfg.version == RUN_CONFIG_VERSION == 2
    assert cfg.retry.max_retries == 2 and cfg.retry.base_delay == 0.1
    with pytest.raises(ConfigError, match="retry.max_retires"):
        validate_run_config({"dataset": "d", "system": "openai:model=m", "retry": {"max_retires": 1}})


def test_old_stored_configs_still_load():
    from airisk.engine.config import read_stored_config

    v1 = {"dataset": "d", "system": {"type": "openai", "model": "m"}, "concurrency": 4, "max_retries": 1,
          "skip_bad": False, "seed": 0}
    cfg = read_stored_config(v1, "old-run")
    assert cfg.version == 1 and cfg.retry.max_retries == 1 and cfg.concurrency == 4
    assert read_stored_config({}, "empty").retry.max_retries == 5  # defaults for configs without retry
    assert read_stored_config({"kind_specific": [1]}, "x").model_extra == {"kind_specific": [1]}
    with pytest.raises(ConfigError, match="run bad: stored config field 'concurrency'"):
        read_stored_config({"concurrency": 0}, "bad")


def test_resume_uses_the_stored_retry_policy(tmp_path, monkeypatch):
    """A v1 run that stored max_retries=0 resumes with no retries (it used to fall back to 5)."""
    from airisk.engine import retry, runner
    from airisk.store import Store
    from airisk.testing.openai_server import running_server
    from airisk.types import Item

    seen: list[int] = []
    orig = retry.call_with_retries

    async def spy(system, messages, *, policy, **kw):
        seen.append(policy.max_retries)
        return await orig(system, messages, policy=policy, **kw)

    monkeypatch.setattr(runner, "call_with_retries", spy)
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    with running_server() as url:
        store.create_run("old", config={"dataset": "d", "system": {"type": "openai", "model": "m", "base_url": url},
                                        "concurrency": 2, "max_retries": 0})
        store.add_items("old", [Item(id="a", prompt="hi"), Item(id="b", prompt="yo")])
        import airisk

        res = airisk.resume("old", db=store)
    assert res.status == "completed" and res.total.responses == 2
    assert seen == [0, 0]
