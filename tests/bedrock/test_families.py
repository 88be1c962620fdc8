"""Every family's converter output checked against that family's documented rules, the rules
catching what each family rejects, and hyperparameters mapped per family with their ranges."""
from __future__ import annotations


import pytest

from unitune.catalog import find_model
from unitune.data.convert import convert_file
from unitune.pipeline import Pipeline
from unitune.providers.bedrock import BedrockProvider
from unitune.providers.bedrock.hyper import map_hyperparameters
from unitune.providers.bedrock.rules import check_file, read_records
from unitune.spec import JobSpec

from .conftest import chat_lines, make_spec, write_jsonl

NOVA = "amazon.nova-micro-v1:0:128k"
LLAMA31 = "meta.llama3-1-8b-instruct-v1:0:128k"
LLAMA32 = "meta.llama3-2-1b-instruct-v1:0:128k"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0:200k"
TITAN = "amazon.titan-text-express-v1:0:8k"


def check(spec):
    return Pipeline(BedrockProvider()).check(spec)


def multi_turn(n: int) -> list[dict]:
    return [{"messages": [{"role": "system", "content": "You are terse."},
                          {"role": "user", "content": f"Hi {i}"},
                          {"role": "assistant", "content": "Hello."},
                          {"role": "user", "content": f"Name {i}?"},
                          {"role": "assistant", "content": f"Number {i}."}]} for i in range(n)]


def convert(tmp_path, model: str, records: list[dict]):
    info = find_model("bedrock", model)
    src = write_jsonl(tmp_path / "src.jsonl", records)
    dst = tmp_path / f"out.{info.rules.format}.jsonl"
    result = convert_file(src, info.rules.format, dst)
    return info, dst, result


def assert_alternates(roles: list[str]) -> None:
    assert len(roles) >= 2 and roles[0] == "user" and roles[-1] == "assistant"
    assert all(a != b for a, b in zip(roles, roles[1:]))


# -- converter output vs the documented formats --------------------------------------------------
@pytest.mark.parametrize("model", [NOVA, LLAMA32])
def test_converse_output_follows_the_converse_schema(tmp_path, model):
    info, dst, result = convert(tmp_path, model, multi_turn(120))
    assert info.rules.format == "bedrock-converse"
    problems, n = check_file(dst, info, "train")
    assert n == 120 and [p for p in problems if p.severity == "error"] == []
    for rec in read_records(dst):
        assert set(rec) <= {"schemaVersion", "system", "messages"}
        assert rec["schemaVersion"] == "bedrock-conversation-2024"
        assert rec["system"] == [{"text": "You are terse."}]
        assert_alternates([m["role"] for m in rec["messages"]])
        for m in rec["messages"]:
            assert m["content"] and all(set(b) == {"text"} and b["text"] for b in m["content"])
            if model == NOVA:
                assert not any(w in b["text"] for b in m["content"]
                               for w in info.rules.reserved_strings)


@pytest.mark.parametrize("model", [LLAMA31, TITAN, "cohere.command-text-v14:7:4k"])
def test_prompt_completion_output(tmp_path, model):
    info, dst, result = convert(tmp_path, model, chat_lines(100))
    assert info.rules.format == "bedrock-prompt-completion"
    problems, n = check_file(dst, info, "train")
    assert n == 100 and [p for p in problems if p.severity == "error"] == []
    for rec in read_records(dst):
        assert set(rec) == {"prompt", "completion"}
        assert rec["completion"].strip()
    # the system prompt has no place in prompt/completion: never dropped silently
    assert result.warnings and all(w.line for w in result.warnings)


def test_claude_output_is_system_plus_plain_messages(tmp_path):
    info, dst, _ = convert(tmp_path, CLAUDE, multi_turn(40))
    assert info.rules.format == "bedrock-claude"
    problems, n = check_file(dst, info, "train")
    assert n == 40 and [p for p in problems if p.severity == "error"] == []
    for rec in read_records(dst):
        assert set(rec) == {"system", "messages"} and rec["system"] == "You are terse."
        for m in rec["messages"]:
            assert set(m) == {"role", "content"} and isinstance(m["content"], str)
        assert_alternates([m["role"] for m in rec["messages"]])


# -- rules catch what each family rejects ---------------------------------------------------------
def codes(problems, severity="error"):
    return {p.code for p in problems if p.severity == severity}


@pytest.mark.parametrize("word", ["Assistant:", "[EOS]", "<image>", "User:"])
def test_nova_reserved_strings(tmp_path, word):
    records = chat_lines(10)
    records[3]["messages"][2]["content"] = f"Sure. {word} next"
    info, dst, _ = convert(tmp_path, NOVA, records)
    problems, _ = check_file(dst, info)
    hit = [p for p in problems if p.code == "bedrock_reserved_string"]
    assert len(hit) == 1 and hit[0].line == 4 and word in hit[0].message
    assert hit[0].path == "messages[1].content[0].text" and hit[0].file == str(dst)


def test_nova_record_counts(tmp_path):
    info, dst, _ = convert(tmp_path, NOVA, chat_lines(7))
    assert "bedrock_too_few_records" in codes(check_file(dst, info)[0])
    info, dst, _ = convert(tmp_path, NOVA, chat_lines(8))
    assert "bedrock_too_few_records" not in codes(check_file(dst, info)[0])


def test_role_order_is_enforced_on_the_converted_file(tmp_path):
    info = find_model("bedrock", NOVA)
    bad = {"schemaVersion": "bedrock-conversation-2024", "messages": [
        {"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]},
        {"role": "assistant", "content": [{"text": "c"}]}]}
    starts_wrong = {"schemaVersion": "bedrock-conversation-2024", "messages": [
        {"role": "assistant", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}
    path = write_jsonl(tmp_path / "bad.jsonl", [bad, starts_wrong] + [bad] * 6)
    problems, _ = check_file(path, info)
    order = [p for p in problems if p.code == "bedrock_role_order"]
    assert {p.line for p in order} >= {1, 2}
    assert any("first message" in p.message for p in order if p.line == 2)
    assert any("last message" in p.message for p in order if p.line == 2)


def test_claude_rejects_content_blocks_and_extra_keys(tmp_path):
    info = find_model("bedrock", CLAUDE)
    good = {"system": "s", "messages": [{"role": "user", "content": "q"},
                                        {"role": "assistant", "content": "a"}]}
    blocks = {"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]},
                           {"role": "assistant", "content": "a"}]}
    extra = {**good, "id": 7}
    path = write_jsonl(tmp_path / "c.jsonl", [blocks, extra] + [good] * 30)
    problems, n = check_file(path, info)
    assert n == 32
    got = {(p.line, p.code) for p in problems}
    assert (1, "bedrock_plain_content") in got and (2, "bedrock_extra_keys") in got


def test_claude_validation_limit(tmp_path):
    info = find_model("bedrock", CLAUDE)
    rec = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = write_jsonl(tmp_path / "v.jsonl", [rec] * 1001)
    assert "bedrock_too_many_records" in codes(check_file(path, info, "validation")[0])
    assert "bedrock_too_many_records" not in codes(check_file(path, info, "train")[0])


def test_llama_token_limit_rejects_long_records(tmp_path):
    info, dst, _ = convert(tmp_path, LLAMA32, chat_lines(99) + [
        {"messages": [{"role": "user", "content": "word " * 40000},
                      {"role": "assistant", "content": "ok"}]}])
    problems, _ = check_file(dst, info, count_tokens=lambda t: len(t.split()))
    long = [p for p in problems if p.code == "bedrock_record_too_long"]
    assert len(long) == 1 and long[0].line == 100 and long[0].severity == "error"
    assert "16000" in long[0].message


def test_tool_calls_are_refused_for_bedrock(aws, tmp_path):
    records = chat_lines(10)
    records[0]["messages"][-1] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]}
    records[0]["messages"].append({"role": "tool", "tool_call_id": "c1", "content": "2"})
    records[0]["messages"].append({"role": "assistant", "content": "2"})
    problems = check(make_spec(tmp_path, records=records))
    errors = [p for p in problems if p.severity == "error"]
    assert errors and all(p.line == 1 for p in errors if p.line)


# -- hyperparameters ---------------------------------------------------------------------------------
def spec_with(hyper: dict, model: str = NOVA, options: dict | None = None) -> JobSpec:
    return JobSpec.from_dict({"name": "hp", "models": {"bedrock": model},
                              "data": {"train": "unused.jsonl"}, "hyperparameters": hyper,
                              "backend_options": {"bedrock": options or {}}})


def mapped(hyper: dict, model: str = NOVA, n_train: int | None = 100, options: dict | None = None):
    spec = spec_with(hyper, model, options)
    vendor = (options or {}).get("hyperparameters", {})
    return map_hyperparameters(spec, find_model("bedrock", model), vendor, n_train)


def errors_of(m):
    return [p for p in m.problems if p.severity == "error"]


def test_nova_ranges_and_strings():
    m = mapped({"epochs": 3, "learning_rate": 0.00005})
    assert m.params == {"epochCount": "3", "learningRate": "0.00005"}
    bad = mapped({"epochs": 6, "learning_rate": 1e-3})
    msgs = " | ".join(p.message for p in errors_of(bad))
    assert "epochCount takes 1–5 (default 2)" in msgs
    assert "learningRate takes 0.000001–0.0001" in msgs
    assert bad.params == {}


def test_nova_takes_no_batch_size_and_says_so():
    m = mapped({"batch_size": 8})
    assert "batchSize" not in m.params and not errors_of(m)
    row = next(r for r in m.rows if r.field == "hyperparameters.batch_size")
    assert not row.applied and "takes no batchSize" in row.note


def test_warmup_ratio_becomes_steps_and_is_clamped():
    m = mapped({"epochs": 2, "warmup_ratio": 0.1}, n_train=200)  # 200 × 2 = 400 steps
    assert m.params["learningRateWarmupSteps"] == "40"
    big = mapped({"epochs": 5, "warmup_ratio": 0.5}, n_train=1000)
    assert big.params["learningRateWarmupSteps"] == "100"
    assert any(p.code == "hyperparameter_clamped" for p in big.problems)


def test_llama_batch_size_is_fixed_at_one():
    m = mapped({"batch_size": 2}, LLAMA31)
    assert any("batchSize takes exactly 1" in p.message for p in errors_of(m))
    assert mapped({"batch_size": 1}, LLAMA31).params == {"batchSize": "1"}


def test_claude_multiplier_early_stopping_and_defaults():
    m = mapped({"epochs": 4, "batch_size": 16, "learning_rate_multiplier": 0.5}, CLAUDE,
               options={"hyperparameters": {"earlyStoppingPatience": 3,
                                            "earlyStoppingThreshold": 0.01}})
    assert m.params == {"epochCount": "4", "batchSize": "16", "learningRateMultiplier": "0.5",
                        "earlyStoppingPatience": "3", "earlyStoppingThreshold": "0.01"}
    lr = mapped({"learning_rate": 1e-4}, CLAUDE)
    warn = [p for p in lr.problems if p.code == "hyperparameter_not_applied"]
    assert warn and "learning_rate_multiplier" in warn[0].message
    assert "learningRateMultiplier takes 0.1–2" in errors_of(
        mapped({"learning_rate_multiplier": 3}, CLAUDE))[0].message
    assert errors_of(mapped({}, CLAUDE, options={"hyperparameters": {"earlyStoppingPatience": 11}}))
    unknown = errors_of(mapped({}, CLAUDE, options={"hyperparameters": {"dropout": 0.1}}))
    assert unknown[0].code == "hyperparameter_unknown" and "earlyStoppingPatience" in unknown[0].hint
    defaults = {r.vendor_param: r.note for r in mapped({}, CLAUDE).rows}
    assert "default 2" in defaults["epochCount"] and "default 32" in defaults["batchSize"]
    assert "default 2" in defaults["earlyStoppingPatience"]


def test_titan_warmup_and_unapplied_fields():
    m = mapped({"epochs": 2, "batch_size": 4, "warmup_ratio": 0.05, "seed": 3,
                "weight_decay": 0.1}, TITAN, n_train=400)
    assert m.params["learningRateWarmupSteps"] == "10"  # 0.05 × (400 / 4 × 2)
    notes = {r.field: r for r in m.rows}
    assert not notes["hyperparameters.seed"].applied and not notes["hyperparameters.weight_decay"].applied


def test_out_of_range_is_refused_at_check(aws, tmp_path):
    problems = check(make_spec(tmp_path, hyper={"epochs": 9}))
    bad = [p for p in problems if p.code == "hyperparameter_out_of_range"]
    assert bad and "1–5" in bad[0].message and bad[0].path == "hyperparameters.epochs"


@pytest.mark.parametrize("today, refused", [("2026-09-09", False), ("2026-09-10", True),
                                            ("2026-09-11", True)])
def test_claude_3_haiku_is_refused_from_its_end_of_life(aws, tmp_path, monkeypatch, today,
                                                        refused):
    monkeypatch.setenv("UNITUNE_TODAY", today)
    problems = check(make_spec(tmp_path, model=CLAUDE, n=40))
    by = {p.code: p for p in problems}
    if not refused:
        assert by["lifecycle_closing"].severity == "warning"
        assert "retire on 2026-09-10 (in 1 days)" in by["lifecycle_closing"].message
        return
    p = by["unsupported_lifecycle"]
    assert p.severity == "error" and "retired on 2026-09-10" in p.message
    assert "reached end of life" in p.message and "source:" in p.message
    assert "custom-model-fine-tuning" in p.message  # the disagreeing source, named
    assert "ignore_lifecycle" in p.hint


@pytest.mark.parametrize("model", [TITAN, "cohere.command-text-v14:7:4k"])
def test_titan_and_cohere_are_refused_as_no_longer_tunable(aws, tmp_path, monkeypatch, model):
    monkeypatch.setenv("UNITUNE_TODAY", "2026-12-04")
    problems = check(make_spec(tmp_path, model=model, n=40))
    (p,) = [p for p in problems if p.code == "unsupported_lifecycle"]
    assert "no longer in the vendor's list of fine-tunable models" in p.message
    assert "as of 2026-12-04" in p.message
    forced = check(make_spec(tmp_path, model=model, n=40, options={"ignore_lifecycle": True}))
    assert [p.severity for p in forced if p.code == "lifecycle_closed"] == ["warning"]


def test_a_range_the_model_documents_do_not_give_is_marked_unverified():
    nova2 = find_model("bedrock", "amazon.nova-2-lite-v1:0:256k")
    m = mapped({"epochs": 3}, nova2.model, n_train=100)
    (w,) = [p for p in m.problems if p.code == "hyperparameter_range_unverified"]
    assert w.severity == "warning" and "copied from Nova Micro/Lite/Pro" in w.message
    assert {r.field: r.note for r in m.rows}["hyperparameters.epochs"] == "range unverified"
    nova = mapped({"epochs": 3}, NOVA, n_train=100)
    assert not [p for p in nova.problems if p.code == "hyperparameter_range_unverified"]


def test_unknown_model_lists_the_known_ones(aws, tmp_path):
    problems = check(make_spec(tmp_path, model="amazon.nova-giant-v9"))
    unknown = [p for p in problems if p.code == "unknown_model"]
    assert unknown and NOVA in unknown[0].hint and unknown[0].path == "models.bedrock"


def test_a_lost_system_prompt_is_said_not_refused(aws, tmp_path):
    """prompt/completion has no place for a system prompt: a warning (the core's validation
    says it per line), never an error and never silent."""
    problems = check(make_spec(tmp_path, model=LLAMA31, n=120))
    lost = [p for p in problems if p.code == "unsupported_system"]
    assert lost and all(p.severity == "warning" for p in lost)
    assert not [p for p in problems if p.severity == "error"]


def test_whether_a_validation_set_is_taken_comes_from_the_catalog(monkeypatch):
    import unitune.catalog as catalog
    from unitune.providers.bedrock import BedrockOptions

    spec = spec_with({})
    target = BedrockProvider().data_target(spec, BedrockOptions())
    assert (target.format, target.validate, target.validation) == (
        "bedrock-converse", f"bedrock:{NOVA}", True)
    info = find_model("bedrock", NOVA)
    none = info.model_copy(update={"rules": info.rules.model_copy(update={"validation": False})})
    monkeypatch.setattr(catalog, "find_model", lambda backend, model: none)
    assert BedrockProvider().data_target(spec, BedrockOptions()).validation is False
