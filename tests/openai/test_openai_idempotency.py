"""No duplicate jobs: lost responses, timeouts and 429/500 storms all end with exactly one job."""
from __future__ import annotations

import io
import uuid

import openai
import pytest

from unitune.backends import SubmitContext
from unitune.errors import InvalidRequest
from unitune.job import JobStatus
from unitune.providers.openai import OpenAIBackend

from openai_helpers import DictUploads, chat_lines, make_spec, no_sleep


def ctx_for(tmp_path, uploads=None, log=None):
    key = f"ut-{uuid.uuid4().hex[:10]}"
    work = tmp_path / key
    work.mkdir()
    return SubmitContext(job_id=key, idempotency_key=key, work_dir=work, uploads=uploads,
                         log=log or (lambda _m: None))


def test_sdk_default_retries_do_create_duplicates(server):
    """The trap itself, shown with the plain SDK: a lost response + default retries = 2 jobs."""
    client = openai.OpenAI(api_key="x", base_url=server.base_url)
    f = client.files.create(file=("t.jsonl", io.BytesIO(chat_lines(12).encode())), purpose="fine-tune")
    server.inject("drop")
    client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=f.id,
                                   metadata={"k": "v"})
    assert server.job_count() == 2


@pytest.mark.parametrize("fault", ["drop", "timeout"])
def test_lost_response_leaves_exactly_one_job(openai_env, tmp_path, fault):
    server = openai_env
    messages = []
    be = OpenAIBackend(options={"timeout": 0.5}, sleep=no_sleep, log=lambda _m: None)
    server.inject(fault, hang_s=1.5)
    ctx = ctx_for(tmp_path, log=messages.append)
    ref = be.submit(make_spec(tmp_path), ctx)
    assert server.job_count() == 1
    (job_id,) = server.jobs
    assert ref.remote_id == job_id
    assert server.create_attempts == 1  # found by its metadata, never created again
    assert any("created although the response was lost" in m for m in messages)
    # a re-run after a crash (same key) finds it too
    assert be.submit(make_spec(tmp_path), ctx).remote_id == job_id
    assert be.find(ctx.idempotency_key).remote_id == job_id
    assert server.job_count() == 1


@pytest.mark.parametrize("kind,count", [("429", 4), ("500", 3)])
def test_storms_end_in_success_with_one_job(openai_backend, openai_env, tmp_path, kind, count):
    server = openai_env
    sleeps = []
    openai_backend._sleep = sleeps.append
    server.inject(kind, count=count, retry_after=0.01 if kind == "429" else None)
    ref = openai_backend.submit(make_spec(tmp_path), ctx_for(tmp_path))
    assert server.job_count() == 1
    assert server.create_attempts == count + 1
    assert len(sleeps) == count
    if kind == "429":
        assert sleeps == [0.01] * count  # Retry-After honoured
    snap = openai_backend.get(ref)
    assert snap.status in (JobStatus.VALIDATING, JobStatus.QUEUED)


def test_storm_on_every_path_still_one_job(openai_backend, openai_env, tmp_path):
    """500s on uploads and lookups too: reads are retried by the SDK; a lookup that still fails
    surfaces as a retryable error (never a blind create), and calling submit again — what the
    Client does with retryable errors — ends with one job."""
    from unitune.errors import BackendError

    server = openai_env
    server.inject("500", count=6, method=None, path=None, retry_after=0.01)
    spec, ctx = make_spec(tmp_path), ctx_for(tmp_path)
    for _ in range(5):
        try:
            ref = openai_backend.submit(spec, ctx)
            break
        except BackendError as exc:
            assert exc.retryable
    assert server.job_count() == 1 and ref.remote_id in server.jobs


def test_persistent_failure_gives_up_without_duplicates(openai_env, tmp_path):
    server = openai_env
    be = OpenAIBackend(options={"create_attempts": 3}, sleep=no_sleep, log=lambda _m: None)
    server.inject("500", count=10)
    from unitune.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable) as info:
        be.submit(make_spec(tmp_path), ctx_for(tmp_path))
    assert info.value.retryable and "HTTP 500" in info.value.message
    assert isinstance(info.value.__cause__, openai.InternalServerError)
    assert server.job_count() == 0 and server.create_attempts == 3


def test_rejected_create_is_not_retried(tmp_path, monkeypatch):
    from unitune.testing.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(models=["gpt-4.1-mini-2025-04-14"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        be = OpenAIBackend(sleep=no_sleep, log=lambda _m: None)
        with pytest.raises(InvalidRequest) as info:
            be.submit(make_spec(tmp_path), ctx_for(tmp_path))
        assert "not available for fine-tuning" in info.value.message
        assert info.value.status_code == 400
        assert server.create_attempts == 1 and server.job_count() == 0


def test_identical_data_is_uploaded_once(openai_backend, openai_env, tmp_path):
    server = openai_env
    uploads = DictUploads()
    spec = make_spec(tmp_path)
    first = openai_backend.submit(spec, ctx_for(tmp_path, uploads))
    second = openai_backend.submit(spec, ctx_for(tmp_path, uploads))
    assert first.remote_id != second.remote_id  # two different unitune jobs
    tune_files = [f for f in server.files.values() if f.purpose == "fine-tune"]
    assert len(tune_files) == 2  # train + validation, uploaded once each
    bodies = [server.jobs[r.remote_id].body for r in (first, second)]
    assert bodies[0]["training_file"] == bodies[1]["training_file"]
    # a cached id the vendor no longer has is uploaded again
    del server.files[bodies[0]["training_file"]]
    third = openai_backend.submit(spec, ctx_for(tmp_path, uploads))
    assert server.jobs[third.remote_id].body["training_file"] != bodies[0]["training_file"]


def test_create_request_carries_mapping(openai_backend, openai_env, tmp_path):
    server = openai_env
    spec = make_spec(tmp_path, hyperparameters={"epochs": 2, "batch_size": 4, "seed": 7,
                                                "learning_rate_multiplier": 0.5,
                                                "learning_rate": 1e-4},
                     suffix="add-v1", metadata={"team": "ml"},
                     backend_options={"openai": {"wandb": {"project": "p1", "tags": ["a"]},
                                                 "poll_interval": 0.01}})
    ctx = ctx_for(tmp_path)
    ref = openai_backend.submit(spec, ctx)
    body = server.jobs[ref.remote_id].body
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {
        "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}}}
    assert "hyperparameters" not in body  # the deprecated top-level field is not sent
    assert body["seed"] == 7 and body["suffix"] == "add-v1"
    assert body["metadata"]["unitune_key"] == ctx.idempotency_key
    assert body["metadata"]["unitune_job_id"] == ctx.job_id and body["metadata"]["team"] == "ml"
    assert body["integrations"] == [{"type": "wandb", "wandb": {"project": "p1", "tags": ["a"]}}]
    assert body["validation_file"]


def test_dpo_job_sends_beta_and_preference_file(openai_backend, openai_env, tmp_path):
    server = openai_env
    spec = make_spec(tmp_path, method="dpo", hyperparameters={"beta": 0.2})
    ref = openai_backend.submit(spec, ctx_for(tmp_path))
    body = server.jobs[ref.remote_id].body
    assert body["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    content = server.files[body["training_file"]].content.decode()
    first = __import__("json").loads(content.splitlines()[0])
    assert set(first) >= {"input", "preferred_output", "non_preferred_output"}


def test_last_attempt_lost_is_found_before_giving_up(openai_env, tmp_path):
    server = openai_env
    be = OpenAIBackend(options={"create_attempts": 3}, sleep=no_sleep, log=lambda _m: None)
    server.inject("500", count=2, retry_after=None)
    server.inject("drop")  # the third (last) create goes through, its answer is lost
    ref = be.submit(make_spec(tmp_path), ctx_for(tmp_path))
    assert server.create_attempts == 3 and server.job_count() == 1 and ref.remote_id in server.jobs


def test_bad_data_is_a_data_error_before_upload(openai_backend, openai_env, tmp_path):
    from unitune.errors import DataError

    with pytest.raises(DataError) as info:
        openai_backend.submit(make_spec(tmp_path, n_train=4), ctx_for(tmp_path))
    assert "at least 10" in str(info.value) and info.value.report.errors
    assert not openai_env.files and not openai_env.jobs


def _count_conversions(monkeypatch) -> list:
    """Wraps (does not replace) the module-level converter the conversion cache calls."""
    from unitune.data import convert as convert_mod

    calls: list = []
    real = convert_mod.convert_file

    def counted(*a, **kw):
        calls.append(a[:2])
        return real(*a, **kw)

    monkeypatch.setattr(convert_mod, "convert_file", counted)
    return calls


def test_check_then_submit_converts_each_file_once(openai_backend, openai_env, tmp_path,
                                                  monkeypatch):
    server = openai_env
    calls = _count_conversions(monkeypatch)
    spec = make_spec(tmp_path, n_train=20, n_valid=None, data={"train": "train.jsonl",
                                                               "validation": 0.25})
    assert not [p for p in openai_backend.check(spec) if p.severity == "error"]
    first = openai_backend.submit(spec, ctx_for(tmp_path))
    assert len(calls) == 2  # the train and validation halves, once each
    second = openai_backend.submit(spec, ctx_for(tmp_path))  # another job, same data: cached
    assert len(calls) == 2
    bodies = [server.jobs[r.remote_id].body for r in (first, second)]
    for field in ("training_file", "validation_file"):
        assert server.files[bodies[0][field]].content == server.files[bodies[1][field]].content
    assert server.files[bodies[0]["training_file"]].content.count(b"\n") == 15
