"""Submitting to Vertex: what goes over the wire, uploads, idempotency, lost responses, errors."""
from __future__ import annotations

import json
import uuid

import pytest

from unitune.backends import SubmitContext
from unitune.errors import (AuthError, BackendUnavailable, InvalidRequest, NotFound,
                            PermissionDenied, QuotaExceeded, SpecError)
from unitune.job import RemoteRef
from unitune.providers.vertex import VertexBackend
from unitune.providers.vertex.backend import KEY_LABEL, JOB_LABEL, label_value
from unitune.providers.vertex.states import nearest_adapter_size

from .conftest import BUCKET, LOCATION, PROJECT, Harness, make_spec, write_chat


def _ctx(tmp_path, key=None, logs=None):
    key = key or f"ut-{uuid.uuid4().hex[:10]}"
    work = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    return SubmitContext(job_id=key, idempotency_key=key, work_dir=work,
                         log=(logs.append if logs is not None else (lambda _m: None)))


# -- adapter size ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank,allowed,expected", [
    (16, [1, 2, 4, 8, 16], 16), (12, [1, 2, 4, 8], 8), (12, [1, 2, 4, 8, 16], 16),
    (3, [1, 2, 4, 8, 16], 4), (6, [1, 2, 4, 8, 16], 8), (64, [1, 2, 4, 8, 16], 16),
    (1, [1, 2, 4, 8, 16], 1), (32, [1, 2, 4, 8, 16, 32], 32), (24, [4, 8, 16, 32], 32), (11, [4, 8, 16, 32], 8),
])
def test_nearest_adapter_size(rank, allowed, expected):
    assert nearest_adapter_size(rank, allowed) == expected


def test_plan_shows_the_adapter_mapping_and_translation(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITUNE_VERTEX_ENDPOINT", "http://127.0.0.1:9")  # plan calls nothing
    spec = make_spec(tmp_path, "genai", models={"vertex": "gemini-2.5-pro"},
                     adapter={"type": "lora", "r": 12},
                     hyperparameters={"epochs": 3, "learning_rate": 1e-4, "batch_size": 8})
    plan = VertexBackend().plan(spec)
    rows = {r.field: r for r in plan.rows}
    assert rows["adapter.r"].vendor_param == "hyperParameters.adapterSize"
    assert rows["adapter.r"].vendor_value == "ADAPTER_SIZE_EIGHT"
    assert "rank 12 → nearest allowed size 8" in rows["adapter.r"].note
    assert "1, 2, 4, 8" in rows["adapter.r"].note
    assert rows["hyperparameters.epochs"].vendor_value == 3
    assert rows["hyperparameters.learning_rate"].applied is False
    assert rows["hyperparameters.batch_size"].applied is False
    assert rows["data.train"].vendor_value.startswith(f"gs://{BUCKET}/unitune/datasets/")
    assert plan.uploads and plan.uploads[0].examples == 12 and plan.uploads[0].format == "vertex"
    assert {p.code for p in plan.problems} >= {"not_applied"}
    assert plan.ok


def test_check_refuses_what_vertex_cannot_run(tmp_path):
    backend = VertexBackend()
    spec = make_spec(tmp_path, "genai", adapter={"type": "qlora", "r": 8})
    problems = backend.check(spec)
    assert any(p.code == "unsupported" and p.path == "adapter.type" for p in problems)
    opts = {"vertex": {"project": PROJECT}}
    problems = backend.check(make_spec(tmp_path, "genai", backend_options=opts))
    assert any(p.code == "missing_option" and "bucket" in p.path for p in problems)
    problems = backend.check(make_spec(tmp_path, "genai", models={"vertex": "gemini-1.0-nano"}))
    assert any(p.code == "unknown_model" for p in problems)


def test_too_many_validation_examples_is_refused(tmp_path):
    val = write_chat(tmp_path / "val.jsonl", n=5001)
    spec = make_spec(tmp_path, "genai", data={"train": "train.jsonl", "validation": str(val)})
    problems = VertexBackend().check(spec)
    bad = [p for p in problems if p.code == "too_many_validation_examples"]
    assert bad and "5,001" in bad[0].message and "5,000" in bad[0].message


def test_bad_endpoint_and_client_are_spec_errors(tmp_path, monkeypatch):
    from unitune.providers.vertex.settings import normalize_endpoint, resolve

    with pytest.raises(SpecError, match="must not carry a path"):
        normalize_endpoint("http://127.0.0.1:8089/v1")
    with pytest.raises(SpecError, match="scheme"):
        normalize_endpoint("127.0.0.1:8089")
    with pytest.raises(SpecError, match="unknown vertex client"):
        resolve({"client": "vertexai.tuning"})
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    s = resolve({"bucket": "gs://my-bucket/some/prefix"})
    assert (s.project, s.location, s.bucket, s.prefix) == ("from-env", "europe-west4",
                                                           "my-bucket", "some/prefix")
    monkeypatch.setenv("UNITUNE_VERTEX_PROJECT", "from-unitune-env")
    spec = make_spec(tmp_path, "genai")
    assert VertexBackend().settings_for(spec).project == "from-unitune-env"


# -- the wire --------------------------------------------------------------------------------------
def test_create_request_on_the_wire(harness: Harness, tmp_path):
    spec = make_spec(tmp_path, harness.kind, adapter={"type": "lora", "r": 2},
                     metadata={"Team": "Search Quality"})
    ctx = _ctx(tmp_path)
    ref = harness.backend.submit(spec, ctx)
    (create,) = [r for r in harness.fake.requests if r["verb"] == "create"]
    assert create["version"] == "v1"
    assert create["path"] == f"/v1/projects/{PROJECT}/locations/{LOCATION}/tuningJobs"
    body = create["body"]
    hp = body["supervisedTuningSpec"]["hyperParameters"]
    if harness.kind == "genai":
        assert hp["epochCount"] == 2 and hp["adapterSize"] == "ADAPTER_SIZE_TWO"
    else:  # GAPIC REST: int64 as a string, enum as its number (TWO is 6, not 2)
        assert hp["epochCount"] == "2" and hp["adapterSize"] == 6
        assert "enum-encoding=int" in create["query"]["$alt"]
    assert hp["learningRateMultiplier"] == 0.5
    assert body["baseModel"] == "gemini-2.5-flash"
    assert body["labels"][KEY_LABEL] == label_value(ctx.idempotency_key)
    assert body["labels"][JOB_LABEL] == label_value(ctx.job_id)
    assert body["labels"]["team"] == "search-quality"
    assert body["tunedModelDisplayName"] == "vertex-test"
    uri = body["supervisedTuningSpec"]["trainingDatasetUri"]
    assert uri.startswith(f"gs://{BUCKET}/unitune/datasets/") and uri.endswith(".jsonl")
    assert ref.remote_id.startswith(f"projects/{PROJECT}/locations/{LOCATION}/tuningJobs/")
    assert ref.extra["client"] == harness.kind


def test_upload_is_content_addressed_and_skipped_when_present(harness: Harness, tmp_path):
    from google.cloud import storage

    spec = make_spec(tmp_path, harness.kind, tag=uuid.uuid4().hex[:6])
    logs: list[str] = []
    first = harness.backend.submit(spec, _ctx(tmp_path, logs=logs))
    second = harness.backend.submit(spec, _ctx(tmp_path, logs=logs))  # another job, same data
    assert first.remote_id != second.remote_id
    assert sum("uploaded train data" in m for m in logs) == 1
    assert sum("reused train data" in m for m in logs) == 1
    uris = {r["body"]["supervisedTuningSpec"]["trainingDatasetUri"] for r in
            harness.fake.requests if r["verb"] == "create"}
    assert len(uris) == 1
    bucket, name = uris.pop()[len("gs://"):].split("/", 1)
    text = storage.Client(project="x").bucket(bucket).blob(name).download_as_text()
    first_line = json.loads(text.splitlines()[0])
    assert first_line["contents"][0]["role"] == "user"
    assert first_line["contents"][1]["role"] == "model"
    assert first_line["systemInstruction"]["parts"][0]["text"] == "You answer briefly."
    import hashlib

    assert name.endswith(hashlib.sha256(text.encode()).hexdigest() + ".jsonl")


def test_validation_fraction_is_split_and_uploaded(harness: Harness, tmp_path):
    spec = make_spec(tmp_path, harness.kind, data={"train": "train.jsonl", "validation": 0.25})
    harness.backend.submit(spec, _ctx(tmp_path))
    (create,) = harness.fake.creates()
    sts = create["supervisedTuningSpec"]
    assert sts["validationDatasetUri"].startswith("gs://") and \
        sts["validationDatasetUri"] != sts["trainingDatasetUri"]


def test_rerun_with_the_same_key_never_creates_a_second_job(harness: Harness, tmp_path):
    spec = make_spec(tmp_path, harness.kind)
    ctx = _ctx(tmp_path)
    harness.arrange("slow")
    first = harness.backend.submit(spec, ctx)
    fresh = VertexBackend()  # a new process resuming: no spec seen, no project in the env
    assert fresh.find(ctx.idempotency_key) is None  # cannot know where to look …
    again = fresh.submit(spec, ctx)  # … but submit looks again with the spec's project
    assert again.remote_id == first.remote_id
    assert len(harness.fake.creates()) == 1
    lists = [r for r in harness.fake.requests if r["verb"] == "list"]
    assert lists and all(f'labels.{KEY_LABEL}=' in r["query"]["filter"] for r in lists)


def test_a_lost_create_response_is_found_by_label_not_resent(harness: Harness, tmp_path):
    spec = make_spec(tmp_path, harness.kind)
    harness.arrange("lost_response")
    logs: list[str] = []
    ref = harness.backend.submit(spec, _ctx(tmp_path, logs=logs))
    assert len(harness.fake.creates()) == 1
    assert ref.remote_id in harness.fake.jobs
    assert any("response lost" in m for m in logs)


def test_lost_response_with_no_job_is_retryable(harness: Harness, tmp_path, monkeypatch):
    spec = make_spec(tmp_path, harness.kind)
    harness.arrange("lost_response")
    # the job vanishes with the response (e.g. the vendor rolled it back): submit must say so
    original = harness.fake._create

    def create_then_forget(parent, payload, enum_int):
        result = original(parent, payload, enum_int)
        harness.fake.jobs.clear()
        return result

    monkeypatch.setattr(harness.fake, "_create", create_then_forget)
    with pytest.raises(BackendUnavailable) as info:
        harness.backend.submit(spec, _ctx(tmp_path))
    assert info.value.retryable and info.value.__cause__ is not None


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario,cls,text", [
    ("error:400:INVALID_ARGUMENT:Base model gemini-9 is not supported for tuning.",
     InvalidRequest, "Base model gemini-9 is not supported"),
    ("error:429:RESOURCE_EXHAUSTED:Quota exceeded for tuning jobs per region.", QuotaExceeded,
     "Quota exceeded"),
    ("error:403:PERMISSION_DENIED:Permission 'aiplatform.tuningJobs.create' denied.",
     PermissionDenied, "aiplatform.tuningJobs.create"),
    ("error:503:UNAVAILABLE:The service is currently unavailable.", BackendUnavailable,
     "currently unavailable"),
])
def test_vendor_errors_are_mapped_with_the_original_chained(harness, tmp_path, scenario, cls, text):
    harness.arrange(scenario)
    with pytest.raises(cls) as info:
        harness.backend.submit(make_spec(tmp_path, harness.kind), _ctx(tmp_path))
    assert text in info.value.message
    assert info.value.backend == "vertex"
    cause = info.value.__cause__
    assert cause is not None and type(cause).__module__.startswith(("google.genai",
                                                                     "google.api_core"))


def test_unknown_job_is_not_found(harness, fake):
    ref = RemoteRef(backend="vertex", remote_id=f"projects/{PROJECT}/locations/{LOCATION}/"
                    "tuningJobs/404404", extra={"client": harness.kind})
    with pytest.raises(NotFound, match="404404"):
        harness.backend.get(ref)


def test_unreachable_endpoint_is_backend_unavailable(harness, monkeypatch, tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv("UNITUNE_VERTEX_ENDPOINT", f"http://127.0.0.1:{port}")
    ref = RemoteRef(backend="vertex", remote_id=f"projects/{PROJECT}/locations/{LOCATION}/"
                    "tuningJobs/1", extra={"client": harness.kind})
    with pytest.raises(BackendUnavailable) as info:
        VertexBackend().get(ref)
    assert info.value.retryable


def test_missing_credentials_is_an_auth_error_with_a_fix(harness, monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(AuthError) as info:
        VertexBackend().find("ut-anything")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in (info.value.hint or "")


def test_cancel_of_a_finished_job_returns_its_state(harness, tmp_path):
    harness.arrange("state:SUCCEEDED")
    ref = harness.backend.submit(make_spec(tmp_path, harness.kind), _ctx(tmp_path))
    harness.backend.get(ref)
    snap = harness.backend.cancel(ref)
    assert snap.status.value == "succeeded"


def test_v1beta1_through_the_client(harness: Harness, tmp_path):
    opts = {"vertex": {"project": PROJECT, "location": LOCATION, "bucket": BUCKET,
                       "client": harness.kind, "api_version": "v1beta1"}}
    ref = harness.backend.submit(make_spec(tmp_path, harness.kind, backend_options=opts),
                                 _ctx(tmp_path))
    assert ref.extra["api_version"] == "v1beta1"
    harness.backend.get(ref)
    versions = {r["version"] for r in harness.fake.requests}
    assert versions == {"v1beta1"}


@pytest.mark.parametrize("key", ["ut-20261128-ab12cd", "UT-Upper", "x" * 80, "a/b c"])
def test_label_values_are_valid_and_stable(key):
    import re

    value = label_value(key)
    assert re.fullmatch(r"[a-z0-9_-]{1,63}", value)
    assert value == label_value(key)
    if re.fullmatch(r"[a-z0-9_-]{1,63}", key):
        assert value == key
    else:
        assert value.startswith("h-") and value != label_value(key + "!")


def test_check_in_one_process_and_submit_in_another_convert_once(harness: Harness, tmp_path,
                                                                   monkeypatch):
    """The converted files are cached by content, not per backend instance: `unitune check`
    then `unitune submit` (two processes) convert each file once."""
    from unitune.data import convert as convert_mod

    calls: list = []
    real = convert_mod.convert_file
    monkeypatch.setattr(convert_mod, "convert_file",
                        lambda *a, **kw: calls.append(a[:2]) or real(*a, **kw))
    spec = make_spec(tmp_path, harness.kind, data={"train": "train.jsonl", "validation": 0.25},
                     tag=uuid.uuid4().hex[:6])
    checked = VertexBackend().check(spec)
    assert not [p for p in checked if p.severity == "error"]
    assert len(calls) == 2  # train and validation halves
    harness.backend.submit(spec, _ctx(tmp_path))
    assert len(calls) == 2
    assert [p.to_dict() for p in VertexBackend().check(spec)] == [p.to_dict() for p in checked]
    (create,) = harness.fake.creates()
    assert create["supervisedTuningSpec"]["validationDatasetUri"].startswith("gs://")
