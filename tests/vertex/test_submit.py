"""Submitting to Vertex through the core pipeline: the plan, what goes over the wire, uploads,
idempotency, lost responses, errors, retries (none in the SDKs) and the stored location."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from unitune.errors import (AuthError, BackendUnavailable, DataError, InvalidRequest, NotFound,
                            PermissionDenied, QuotaExceeded, RateLimited, SpecError)
from unitune.job import RemoteRef
from unitune.pipeline import Pipeline
from unitune.provider import Ids, Location
from unitune.providers.vertex import VertexProvider
from unitune.providers.vertex.states import nearest_adapter_size
from unitune.providers.vertex.translate import JOB_LABEL, KEY_LABEL, label_value
from unitune.retry import RetryPolicy

from .conftest import BUCKET, LOCATION, PROJECT, Harness, make_spec, pipeline, submit, write_chat


def _no_retry() -> Pipeline:
    return Pipeline(VertexProvider(), policy=RetryPolicy(max_retries=0))


def _problems(plan, code):
    return [p for p in plan.problems if p.code == code]


# -- the plan ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank,allowed,expected", [
    (16, [1, 2, 4, 8, 16], 16), (12, [1, 2, 4, 8], 8), (12, [1, 2, 4, 8, 16], 16),
    (3, [1, 2, 4, 8, 16], 4), (6, [1, 2, 4, 8, 16], 8), (64, [1, 2, 4, 8, 16], 16),
    (1, [1, 2, 4, 8, 16], 1), (32, [1, 2, 4, 8, 16, 32], 32), (24, [4, 8, 16, 32], 32),
    (11, [4, 8, 16, 32], 8),
])
def test_nearest_adapter_size(rank, allowed, expected):
    assert nearest_adapter_size(rank, allowed) == expected


def test_plan_shows_the_request_and_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITUNE_VERTEX_ENDPOINT", "http://127.0.0.1:9")  # plan calls nothing
    spec = make_spec(tmp_path, "genai", models={"vertex": "gemini-2.5-pro"},
                     adapter={"type": "lora", "r": 12}, metadata={"Team": "Search"},
                     hyperparameters={"epochs": 3, "learning_rate": 1e-4, "batch_size": 8})
    plan = pipeline().plan(spec)
    assert plan.ready, [p.message for p in plan.problems]
    rows = {r.field: r for r in plan.rows}
    assert rows["adapter.r"].vendor_param == "supervisedTuningSpec.hyperParameters.adapterSize"
    assert rows["adapter.r"].vendor_value == "ADAPTER_SIZE_EIGHT"
    assert "rank 12 → nearest allowed size 8" in rows["adapter.r"].note
    assert "1, 2, 4, 8" in rows["adapter.r"].note
    assert rows["hyperparameters.epochs"].vendor_value == 3
    assert rows["hyperparameters.learning_rate"].applied is False
    assert rows["hyperparameters.batch_size"].applied is False
    assert rows["data.train"].vendor_value.startswith(f"gs://{BUCKET}/unitune/datasets/")
    assert plan.uploads and plan.uploads[0].examples == 12 and plan.uploads[0].format == "vertex"
    assert {p.code for p in plan.problems} >= {"not_applied"}
    req = plan.request
    assert req["baseModel"] == "gemini-2.5-pro"
    assert req["supervisedTuningSpec"]["hyperParameters"] == {
        "epochCount": 3, "adapterSize": "ADAPTER_SIZE_EIGHT"}
    # labels and description are in the plan (placeholders where only submit knows the value)
    assert req["labels"] == {"team": "search", KEY_LABEL: "<idempotency-key>",
                             JOB_LABEL: "<job-id>"}
    assert req["description"].startswith("<")
    assert plan.location.endpoint == "http://127.0.0.1:9"


def test_plan_refuses_what_vertex_cannot_run(tmp_path):
    plan = pipeline().plan(make_spec(tmp_path, "genai", adapter={"type": "qlora", "r": 8}))
    assert not plan.ready
    assert any(p.code == "unsupported" and p.path == "adapter.type" for p in plan.problems)
    plan = pipeline().plan(make_spec(tmp_path, "genai", models={"vertex": "gemini-1.0-nano"}))
    assert _problems(plan, "unknown_model")


def test_every_missing_setting_is_reported_at_once(tmp_path):
    spec = make_spec(tmp_path, "genai", backend_options={"vertex": {"location": LOCATION}})
    plan = pipeline().plan(spec)
    missing = {p.path: p for p in _problems(plan, "option_missing")}
    assert set(missing) == {"backend_options.vertex.project", "backend_options.vertex.bucket"}
    assert "UNITUNE_VERTEX_PROJECT" in missing["backend_options.vertex.project"].hint
    assert "UNITUNE_VERTEX_BUCKET" in missing["backend_options.vertex.bucket"].hint
    assert not plan.ready
    with pytest.raises(SpecError) as info:
        pipeline().prepare_submission(spec)
    assert "project" in info.value.message and "bucket" in info.value.message


def test_too_many_validation_examples_is_refused(tmp_path):
    val = write_chat(tmp_path / "val.jsonl", n=5001)
    spec = make_spec(tmp_path, "genai", data={"train": "train.jsonl", "validation": str(val)})
    bad = _problems(pipeline().plan(spec), "too_many_validation_examples")
    assert bad and "5,001" in bad[0].message and "5,000" in bad[0].message
    with pytest.raises(DataError):
        pipeline().prepare_submission(spec)


def test_data_format_is_honoured(tmp_path):
    spec = make_spec(tmp_path, "genai", data={"train": "train.jsonl", "format": "alpaca"})
    plan = pipeline().plan(spec)  # chat lines read as alpaca: nothing converts
    assert not plan.ready and (_problems(plan, "not_converted") or _problems(plan, "no_examples"))
    spec = make_spec(tmp_path, "genai", data={"train": "train.jsonl", "format": "openai"})
    assert pipeline().plan(spec).ready


def test_options_endpoint_client_and_google_fallbacks(tmp_path, monkeypatch):
    opts = {"project": PROJECT, "bucket": BUCKET}
    for bad, fragment in (({"endpoint": "http://127.0.0.1:8089/v1"}, "must not carry a path"),
                          ({"endpoint": "127.0.0.1:8089"}, "scheme"),
                          ({"client": "vertexai.tuning"}, "client")):
        spec = make_spec(tmp_path, "genai", backend_options={"vertex": {**opts, **bad}})
        with pytest.raises(SpecError, match=fragment) as info:
            pipeline().prepare_submission(spec)
        assert info.value.field.startswith("backend_options.vertex.")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    spec = make_spec(tmp_path, "genai", backend_options={"vertex": {
        "bucket": "gs://my-bucket/some/prefix", "client": "google-genai"}})
    loc = pipeline().plan(spec).location
    assert (loc.project, loc.region, loc.extra["bucket"], loc.extra["prefix"],
            loc.extra["client"]) == ("from-env", "europe-west4", "my-bucket", "some/prefix", "genai")
    monkeypatch.setenv("UNITUNE_VERTEX_PROJECT", "from-unitune-env")
    assert pipeline().plan(spec).location.project == "from-unitune-env"
    monkeypatch.setenv("UNITUNE_VERTEX_BUKET", "x")
    with pytest.raises(SpecError, match="did you mean 'bucket'"):
        pipeline().prepare_submission(spec)


# -- the wire --------------------------------------------------------------------------------------
def test_create_request_on_the_wire(harness: Harness, tmp_path):
    spec = make_spec(tmp_path, harness.kind, adapter={"type": "lora", "r": 2},
                     metadata={"Team": "Search Quality"})
    key = f"ut-{uuid.uuid4().hex[:10]}"
    ref = submit(spec, key=key, job_id="ut-job-1")
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
    assert body["labels"] == {KEY_LABEL: key, JOB_LABEL: "ut-job-1", "team": "search-quality"}
    assert body["tunedModelDisplayName"] == "vertex-test"
    assert body["description"] == "unitune job ut-job-1"
    uri = body["supervisedTuningSpec"]["trainingDatasetUri"]
    assert re.fullmatch(rf"gs://{BUCKET}/unitune/datasets/[0-9a-f]{{64}}\.jsonl", uri)
    assert ref.remote_id.startswith(f"projects/{PROJECT}/locations/{LOCATION}/tuningJobs/")
    assert ref.extra["client"] == harness.kind and ref.extra["endpoint"] == harness.fake.url


def test_upload_is_content_addressed_and_skipped_when_present(harness: Harness, tmp_path):
    import hashlib

    from google.cloud import storage

    spec = make_spec(tmp_path, harness.kind, tag=uuid.uuid4().hex[:6])
    first = submit(spec)
    uri = harness.fake.creates()[0]["supervisedTuningSpec"]["trainingDatasetUri"]
    bucket, name = uri[len("gs://"):].split("/", 1)
    blob = storage.Client(project="x").bucket(bucket).get_blob(name)
    before = (blob.generation, blob.updated)
    second = submit(spec)  # another job, same data: HEAD finds the object, no PUT
    assert first.remote_id != second.remote_id
    assert {c["supervisedTuningSpec"]["trainingDatasetUri"] for c in harness.fake.creates()} == {uri}
    blob = storage.Client(project="x").bucket(bucket).get_blob(name)
    assert (blob.generation, blob.updated) == before
    text = blob.download_as_text()
    first_line = json.loads(text.splitlines()[0])
    assert first_line["contents"][0]["role"] == "user"
    assert first_line["contents"][1]["role"] == "model"
    assert first_line["systemInstruction"]["parts"][0]["text"] == "You answer briefly."
    assert name.endswith(hashlib.sha256(text.encode()).hexdigest() + ".jsonl")


def test_validation_fraction_is_split_and_uploaded(harness: Harness, tmp_path):
    submit(make_spec(tmp_path, harness.kind, data={"train": "train.jsonl", "validation": 0.25}))
    (create,) = harness.fake.creates()
    sts = create["supervisedTuningSpec"]
    assert sts["validationDatasetUri"].startswith("gs://") and \
        sts["validationDatasetUri"] != sts["trainingDatasetUri"]


def test_a_job_is_found_by_its_key_from_the_stored_location(harness: Harness, tmp_path):
    spec = make_spec(tmp_path, harness.kind)
    harness.arrange("slow")
    key = f"ut-{uuid.uuid4().hex[:10]}"
    sub = pipeline().prepare_submission(spec)
    first = pipeline().submit(sub, Ids(job_id=key, key=key))
    found = pipeline().lookup(key, sub.location)  # a fresh provider: no state carried over
    assert found is not None and found.remote_id == first.remote_id
    assert found.extra == first.extra
    assert len(harness.fake.creates()) == 1
    lists = [r for r in harness.fake.requests if r["verb"] == "list"]
    assert lists and all(f'labels.{KEY_LABEL}="{key}"' == r["query"]["filter"] for r in lists)


def test_status_and_cancel_from_a_fresh_process_use_the_stored_endpoint(harness: Harness,
                                                                        tmp_path):
    harness.arrange("slow")
    ref = submit(make_spec(tmp_path, harness.kind))
    code = ("import json, sys\n"
            "from unitune.job import RemoteRef\n"
            "from unitune.providers.vertex import VertexProvider\n"
            "p = VertexProvider(); ref = RemoteRef.model_validate_json(sys.argv[1])\n"
            "print(json.dumps([p.read(ref).raw_status, p.cancel(ref).status.value]))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNITUNE_VERTEX_")}
    out = subprocess.run([sys.executable, "-c", code, ref.model_dump_json()], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    raw, status = json.loads(out.stdout.strip().splitlines()[-1])
    assert raw and status in ("cancelling", "cancelled")


def test_a_lost_create_response_is_found_by_label_not_resent(harness: Harness, tmp_path):
    harness.arrange("lost_response")
    logs: list[str] = []
    ref = submit(make_spec(tmp_path, harness.kind), logs=logs)
    assert len(harness.fake.creates()) == 1
    assert ref.remote_id in harness.fake.jobs
    assert any("answer was lost" in m for m in logs), logs


def test_lost_response_with_no_job_is_retryable(harness: Harness, tmp_path, monkeypatch):
    harness.arrange("lost_response")
    original = harness.fake._create

    def create_then_forget(parent, payload, enum_int):  # the vendor rolled the job back
        result = original(parent, payload, enum_int)
        harness.fake.jobs.clear()
        return result

    monkeypatch.setattr(harness.fake, "_create", create_then_forget)
    pipe = _no_retry()
    with pytest.raises(BackendUnavailable) as info:
        pipe.submit(pipe.prepare_submission(make_spec(tmp_path, harness.kind)), Ids("k1", "k1"))
    assert info.value.retryable and info.value.__cause__ is not None
    assert len(harness.fake.creates()) == 1  # the SDK did not re-send it


# -- errors and retries ------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario,cls,text", [
    ("error:400:INVALID_ARGUMENT:Base model gemini-9 is not supported for tuning.",
     InvalidRequest, "Base model gemini-9 is not supported"),
    ("error:429:RESOURCE_EXHAUSTED:Quota exceeded for tuning jobs per region.", QuotaExceeded,
     "Quota exceeded"),
    # a rate quota is waited out, not a permanent refusal (issue 12 item 4)
    ("error:429:RESOURCE_EXHAUSTED:Quota exceeded for aiplatform.googleapis.com/"
     "tuning_job_requests_per_minute_per_region.", RateLimited, "per_minute"),
    ("error:403:PERMISSION_DENIED:Permission 'aiplatform.tuningJobs.create' denied.",
     PermissionDenied, "aiplatform.tuningJobs.create"),
    ("error:503:UNAVAILABLE:The service is currently unavailable.", BackendUnavailable,
     "currently unavailable"),
])
def test_vendor_errors_are_mapped_with_the_original_chained(harness, tmp_path, scenario, cls, text):
    harness.arrange(scenario)
    pipe = _no_retry()
    with pytest.raises(cls) as info:
        pipe.submit(pipe.prepare_submission(make_spec(tmp_path, harness.kind)), Ids("k2", "k2"))
    assert text in info.value.message
    assert info.value.backend == "vertex"
    cause = info.value.__cause__
    assert cause is not None and type(cause).__module__.startswith(("google.genai",
                                                                     "google.api_core"))
    posts = [r for r in harness.fake.requests if r["method"] == "POST"]
    assert len(posts) == 1  # one attempt: no retry inside the SDK


def test_the_sdks_do_not_retry_a_429(harness, tmp_path):
    harness.arrange("slow")
    ref = submit(make_spec(tmp_path, harness.kind))
    seen = len(harness.fake.requests)
    harness.fake.rate_limit_next(3)
    with pytest.raises(RateLimited) as info:
        harness.provider.read(ref)
    assert info.value.retry_after == 3 and info.value.retryable
    assert [r["verb"] for r in harness.fake.requests[seen:]] == ["throttled"]


def test_unknown_job_is_not_found(harness):
    with pytest.raises(NotFound, match="404404"):
        harness.provider.read(harness.missing_ref())


def test_unreachable_endpoint_is_backend_unavailable(harness):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    ref = RemoteRef(backend="vertex", remote_id=f"projects/{PROJECT}/locations/{LOCATION}/"
                    "tuningJobs/1", extra={"client": harness.kind,
                                           "endpoint": f"http://127.0.0.1:{port}"})
    with pytest.raises(BackendUnavailable) as info:
        VertexProvider().read(ref)
    assert info.value.retryable


def test_missing_credentials_is_an_auth_error_with_a_fix(harness, monkeypatch, tmp_path):
    location = pipeline().plan(make_spec(tmp_path, harness.kind)).location
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(AuthError) as info:
        VertexProvider().lookup("ut-anything", location, None)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in (info.value.hint or "")


def test_key_file_option(harness, monkeypatch, tmp_path):
    adc = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("UNITUNE_VERTEX_KEY_FILE", adc)
    harness.arrange("slow")
    ref = submit(make_spec(tmp_path, harness.kind))
    assert ref.extra["key_file"] == adc
    assert VertexProvider().read(ref).raw_status


def test_cancel_of_a_finished_job_returns_its_state(harness, tmp_path):
    harness.arrange("state:SUCCEEDED")
    ref = submit(make_spec(tmp_path, harness.kind))
    harness.provider.read(ref)
    assert harness.provider.cancel(ref).status.value == "succeeded"


def test_v1beta1_through_the_client(harness: Harness, tmp_path):
    opts = {"vertex": {"project": PROJECT, "location": LOCATION, "bucket": BUCKET,
                       "client": harness.kind, "api_version": "v1beta1"}}
    ref = submit(make_spec(tmp_path, harness.kind, backend_options=opts))
    assert ref.extra["api_version"] == "v1beta1"
    harness.provider.read(ref)
    assert {r["version"] for r in harness.fake.requests} == {"v1beta1"}


def test_a_field_the_client_cannot_send_is_refused_not_dropped(harness: Harness):
    body = {"baseModel": "gemini-2.5-flash", "serviceAccount": "sa@p.iam.gserviceaccount.com",
            "supervisedTuningSpec": {"trainingDatasetUri": "gs://b/x.jsonl",
                                     "noSuchField": True}}
    loc = Location(backend="vertex", project=PROJECT, region=LOCATION,
                   endpoint=harness.fake.url, extra={"client": harness.kind})
    with pytest.raises(InvalidRequest):
        harness.provider.create(body, Ids("k3", "k3"), loc, None)
    assert not harness.fake.creates()


@pytest.mark.parametrize("key", ["ut-20261128-ab12cd", "UT-Upper", "x" * 80, "a/b c"])
def test_label_values_are_valid_and_stable(key):
    value = label_value(key)
    assert re.fullmatch(r"[a-z0-9_-]{1,63}", value)
    assert value == label_value(key)
    if re.fullmatch(r"[a-z0-9_-]{1,63}", key):
        assert value == key
    else:
        assert value.startswith("h-") and value != label_value(key + "!")
