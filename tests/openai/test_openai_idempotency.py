"""No duplicate jobs: lost responses, timeouts and 429/500 storms all end with exactly one job.
The provider makes ONE create attempt with the SDK's retries off; the core's create_once (through
Pipeline) waits, looks the job up by its key, and creates again only when it is really absent."""
from __future__ import annotations

import io
import json

import openai
import pytest

from unitune.errors import BackendUnavailable, InvalidRequest
from unitune.job import JobStatus
from unitune.providers.openai import OpenAIProvider

from openai_helpers import DictUploads, chat_lines, make_spec, new_ids, pipe, submit


def quiet() -> OpenAIProvider:
    return OpenAIProvider(log=lambda _m: None)


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
    server, messages = openai_env, []
    p = pipe(quiet(), base_options={"timeout": 0.5}, log=messages)
    server.inject(fault, hang_s=1.5)
    spec = make_spec(tmp_path)
    ids = new_ids(spec)
    sub = p.prepare_submission(spec)
    ref = p.submit(sub, ids)
    assert server.job_count() == 1
    (job_id,) = server.jobs
    assert ref.remote_id == job_id
    assert server.create_attempts == 1  # found by its metadata, never created again
    assert any("created although the answer was lost" in m for m in messages)
    # a re-run after a crash (same key) finds it through the Location stored at claim time
    assert p.lookup(ids.key, sub.location).remote_id == job_id
    assert pipe(quiet()).lookup(ids.key, sub.location).remote_id == job_id  # a fresh provider
    assert server.job_count() == 1


@pytest.mark.parametrize("kind,count", [("429", 4), ("500", 3)])
def test_storms_end_in_success_with_one_job(openai_provider, openai_env, tmp_path, kind, count):
    server, sleeps = openai_env, []
    server.inject(kind, count=count, retry_after=0.01 if kind == "429" else None)
    ref = submit(pipe(openai_provider, sleeps=sleeps), make_spec(tmp_path))
    assert server.job_count() == 1
    assert server.create_attempts == count + 1
    assert len(sleeps) == count
    if kind == "429":
        assert sleeps == [0.01] * count  # Retry-After honoured
    else:
        assert sleeps == [0.01 * 2 ** i for i in range(count)]  # the core's back-off, no jitter
    assert openai_provider.read(ref).status in (JobStatus.VALIDATING, JobStatus.QUEUED)


def test_sdk_retries_are_off_for_every_call(openai_provider, openai_env, tmp_path):
    """A 500 on a read is ONE request: the retry happens in the core, not in the SDK."""
    server = openai_env
    ref = submit(openai_provider, make_spec(tmp_path))
    before = len(server.requests)
    server.inject("500", count=1, method="GET", path=f"/fine_tuning/jobs/{ref.remote_id}",
                  retry_after=None)
    with pytest.raises(BackendUnavailable) as info:
        openai_provider.read(ref)
    assert info.value.retryable and len(server.requests) == before + 1
    assert isinstance(info.value.__cause__, openai.InternalServerError)


def test_storm_on_every_path_still_one_job(openai_provider, openai_env, tmp_path):
    """500s on uploads, processing polls and lookups too: every call is retried by the core's
    policy (a failed lookup is never taken for "absent"); one job in the end."""
    server = openai_env
    server.inject("500", count=6, method=None, path=None, retry_after=0.01)
    ref = submit(pipe(openai_provider), make_spec(tmp_path))
    assert server.job_count() == 1 and ref.remote_id in server.jobs


def test_persistent_failure_gives_up_without_duplicates(openai_provider, openai_env, tmp_path):
    server = openai_env
    server.inject("500", count=10)
    with pytest.raises(BackendUnavailable) as info:
        submit(pipe(openai_provider, max_retries=2), make_spec(tmp_path))
    assert info.value.retryable and "HTTP 500" in info.value.message
    assert isinstance(info.value.__cause__, openai.InternalServerError)
    assert server.job_count() == 0 and server.create_attempts == 3


def test_rejected_create_is_not_retried(tmp_path, monkeypatch):
    from unitune.testing.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(models=["gpt-4.1-mini-2025-04-14"]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        with pytest.raises(InvalidRequest) as info:
            submit(quiet(), make_spec(tmp_path))
        assert "not available for fine-tuning" in info.value.message
        assert info.value.status_code == 400 and not info.value.retryable
        assert server.create_attempts == 1 and server.job_count() == 0


def test_identical_data_is_uploaded_once(openai_provider, openai_env, tmp_path):
    server, uploads = openai_env, DictUploads()
    spec = make_spec(tmp_path)
    first = submit(openai_provider, spec, uploads=uploads)
    second = submit(openai_provider, spec, uploads=uploads)
    assert first.remote_id != second.remote_id  # two different unitune jobs
    tune_files = [f for f in server.files.values() if f.purpose == "fine-tune"]
    assert len(tune_files) == 2  # train + validation, uploaded once each
    bodies = [server.jobs[r.remote_id].body for r in (first, second)]
    assert bodies[0]["training_file"] == bodies[1]["training_file"]
    # a cached id the vendor no longer has is uploaded again
    del server.files[bodies[0]["training_file"]]
    third = submit(openai_provider, spec, uploads=uploads)
    assert server.jobs[third.remote_id].body["training_file"] != bodies[0]["training_file"]


def test_create_request_carries_mapping(openai_provider, openai_env, tmp_path):
    server = openai_env
    spec = make_spec(tmp_path, hyperparameters={"epochs": 2, "batch_size": 4, "seed": 7,
                                                "learning_rate_multiplier": 0.5,
                                                "learning_rate": 1e-4},
                     suffix="add-v1", metadata={"team": "ml"},
                     backend_options={"openai": {"wandb": {"project": "p1", "tags": ["a"]},
                                                 "poll_interval": 0.01}})
    ids = new_ids(spec)
    ref = submit(openai_provider, spec, ids=ids, work_dir=tmp_path / "job")
    body = server.jobs[ref.remote_id].body
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {
        "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}}}
    assert "hyperparameters" not in body  # the deprecated top-level field is not sent
    assert body["seed"] == 7 and body["suffix"] == "add-v1"
    assert body["metadata"]["unitune_key"] == ids.key
    assert body["metadata"]["unitune_job_id"] == ids.job_id and body["metadata"]["team"] == "ml"
    assert body["integrations"] == [{"type": "wandb", "wandb": {"project": "p1", "tags": ["a"]}}]
    assert body["validation_file"]
    # the job folder keeps the request exactly as sent
    assert json.loads((tmp_path / "job" / "request.json").read_text()) == body


def test_dpo_job_sends_beta_and_preference_file(openai_provider, openai_env, tmp_path):
    server = openai_env
    ref = submit(openai_provider, make_spec(tmp_path, method="dpo", hyperparameters={"beta": 0.2}))
    body = server.jobs[ref.remote_id].body
    assert body["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    first = json.loads(server.files[body["training_file"]].content.decode().splitlines()[0])
    assert set(first) >= {"input", "preferred_output", "non_preferred_output"}


def test_last_attempt_lost_is_found_before_giving_up(openai_provider, openai_env, tmp_path):
    """The last allowed create goes through but its answer is lost: the core looks it up once
    more before giving up, so the caller gets the one job, not an error."""
    server = openai_env
    server.inject("500", count=2, retry_after=None)
    server.inject("drop")
    ref = submit(pipe(openai_provider, max_retries=2), make_spec(tmp_path))
    assert server.create_attempts == 3 and server.job_count() == 1 and ref.remote_id in server.jobs


def test_bad_data_is_a_data_error_before_upload(openai_provider, openai_env, tmp_path):
    from unitune.errors import DataError

    with pytest.raises(DataError) as info:
        submit(openai_provider, make_spec(tmp_path, n_train=4))
    assert "at least 10" in str(info.value) and info.value.report.errors
    assert not openai_env.files and not openai_env.jobs and not openai_env.requests


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


def test_plan_then_submit_converts_each_file_once(openai_provider, openai_env, tmp_path,
                                                 monkeypatch):
    server = openai_env
    calls = _count_conversions(monkeypatch)
    spec = make_spec(tmp_path, n_train=20, n_valid=None, data={"train": "train.jsonl",
                                                               "validation": 0.25})
    assert pipe(openai_provider).plan(spec).ready
    first = submit(openai_provider, spec)
    assert len(calls) == 2  # the train and validation halves, once each
    second = submit(openai_provider, spec)  # another job, same data: cached
    assert len(calls) == 2
    bodies = [server.jobs[r.remote_id].body for r in (first, second)]
    for field in ("training_file", "validation_file"):
        assert server.files[bodies[0][field]].content == server.files[bodies[1][field]].content
    assert server.files[bodies[0]["training_file"]].content.count(b"\n") == 15
