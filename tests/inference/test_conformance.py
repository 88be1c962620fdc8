"""The inference protocol, the same on every backend's fake, through the vendor's real SDK:
`generate(messages, params) -> Generation(text, finish_reason, usage, latency_s, raw)`."""
from __future__ import annotations

import pytest

from unitune.errors import BackendError
from unitune.inference import GenParams, generate
from unitune.inference.batch import call_once, run_batch
from unitune.inference.registry import caller_for, caller_for_job
from unitune.retry import RetryPolicy

FAST = RetryPolicy(max_retries=3, base=0.01, cap=0.05, deadline=10, jitter=False)
MSGS = [{"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Where is my parcel?"}]


def test_base_model_answers_with_the_one_shape(harness):
    g = generate(f"{harness.name}:{harness.base_model}", MSGS, GenParams(max_tokens=64),
                 policy=FAST)
    assert g.text == "echo: Where is my parcel?"
    assert g.finish_reason == "stop"
    assert isinstance(g.usage["input_tokens"], int) and g.usage["input_tokens"] > 0
    assert isinstance(g.usage["output_tokens"], int) and g.usage["output_tokens"] > 0
    assert g.latency_s > 0 and isinstance(g.raw, dict) and "ResponseMetadata" not in g.raw


def test_request_carries_system_sampling_and_limit(harness):
    generate(f"{harness.name}:{harness.base_model}", MSGS,
             GenParams(max_tokens=33, temperature=0.0, seed=7), policy=FAST)
    req = harness.requests()[-1]
    sent = harness.sent(req)
    assert sent["max_tokens"] == 33 and sent["temperature"] == 0.0
    assert sent["system"] == ["Answer briefly."] and sent["user"] == ["Where is my parcel?"]
    assert sent["seed"] == (7 if harness.supports_seed else None)


def test_cut_answer_reports_length(harness):
    harness.script("x" * 400)
    g = generate(f"{harness.name}:{harness.base_model}", MSGS, GenParams(max_tokens=5),
                 policy=FAST)
    assert g.finish_reason == "length" and len(g.text) <= 20


def test_rate_limit_is_retried_by_the_core_policy(harness):
    harness.script({"status": 429}, "after the retry")
    before = len(harness.requests())
    g = generate(f"{harness.name}:{harness.base_model}", MSGS, policy=FAST)
    assert g.text == "after the retry"
    assert len(harness.requests()) - before == 2


def test_unknown_model_is_a_clean_error(harness):
    with pytest.raises(BackendError) as err:
        generate(harness.unknown_model(), MSGS, policy=FAST)
    assert not err.value.retryable
    assert "Traceback" not in str(err.value)


def test_tuned_job_and_its_base(harness):
    rec, target = harness.tuned_record()
    tuned = caller_for_job(rec.id)
    g = call_once(tuned, MSGS, GenParams(max_tokens=64), policy=FAST)
    assert g.text == "echo: Where is my parcel?"
    assert harness.requests()[-1]["model"] == target
    base = caller_for_job(rec.id, base=True)
    call_once(base, MSGS, GenParams(max_tokens=64), policy=FAST)
    sent_model = harness.requests()[-1]["model"]
    assert target not in sent_model
    assert sent_model.endswith(harness.base_model.replace(":128k", ""))


def test_batch_keeps_order_and_survives_one_failure(harness):
    caller = caller_for(f"{harness.name}:{harness.base_model}")
    convs = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]
    harness.script("first", {"status": 400, "message": "bad one"})
    out = run_batch(caller, convs, GenParams(max_tokens=32), concurrency=1, policy=FAST)
    assert [o.ok for o in out] == [True, False, True, True, True, True]
    assert out[0].generation.text == "first"
    assert [o.generation.text for o in out[2:]] == [f"echo: question {i}" for i in range(2, 6)]
    out = run_batch(caller, convs, GenParams(max_tokens=32), concurrency=4, policy=FAST)
    assert [o.generation.text for o in out] == [f"echo: question {i}" for i in range(6)]
