"""Submit against moto: S3 content-hash uploads (skip, SSE-KMS), the create request itself,
idempotency (unitune never sends a second create for one job), plan/check upload nothing."""
from __future__ import annotations

import hashlib
import json

import pytest
from botocore.awsrequest import AWSResponse

from unitune.errors import DataError, SpecError, Unsupported
from unitune.providers.bedrock import BedrockBackend
from unitune.providers.bedrock.naming import TAG_JOB_ID, job_name_for, token_for

from .conftest import BUCKET, ctx_for, make_spec


def count_calls(client, operation: str) -> list:
    calls: list = []
    client.meta.events.register(f"before-call.*.{operation}",
                                lambda params, **kw: calls.append(params))
    return calls


def objects(aws) -> dict[str, bytes]:
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_submit_uploads_under_content_hash_and_sends_the_create(aws, tmp_path):
    spec = make_spec(tmp_path, hyper={"epochs": 3, "learning_rate": 2e-5}, validation=0.2)
    backend = BedrockBackend()
    ref = backend.submit(spec, ctx_for(tmp_path, "ut-20261128-abc123"))

    stored = objects(aws)
    assert len(stored) == 2  # train + validation split
    for key, body in stored.items():
        assert key == f"unitune/data/{hashlib.sha256(body).hexdigest()}.jsonl"
    job = aws.job(job_name_for("ut-20261128-abc123"))
    assert ref.remote_id == job.job_arn
    assert job.base_model_identifier == "amazon.nova-micro-v1:0:128k"
    assert job.client_request_token == token_for("ut-20261128-abc123")
    assert {"key": TAG_JOB_ID, "value": "ut-20261128-abc123"} in job.job_tags
    assert job.hyper_parameters["epochCount"] == "3"
    assert job.hyper_parameters["learningRate"] == "0.00002"
    assert all(isinstance(v, str) for v in job.hyper_parameters.values())
    assert job.training_data_config["s3Uri"].startswith(f"s3://{BUCKET}/unitune/data/")
    assert job.validation_data_config["validators"][0]["s3Uri"] in {
        f"s3://{BUCKET}/{k}" for k in stored}
    assert job.output_data_config["s3Uri"] == f"s3://{BUCKET}/unitune/output/{job.job_name}/"
    assert job.customization_type == "FINE_TUNING"
    assert job.role_arn == aws.role
    # what was uploaded is the converse schema, 16 + 4 records
    bodies = sorted(stored.values(), key=len)
    assert bodies[0].count(b"\n") == 4 and bodies[1].count(b"\n") == 16
    assert b'"schemaVersion":"bedrock-conversation-2024"' in bodies[1]


def test_identical_data_is_uploaded_once(aws, tmp_path):
    backend = BedrockBackend()
    puts = count_calls(backend.client("s3"), "PutObject")
    heads = count_calls(backend.client("s3"), "HeadObject")
    log: list[str] = []
    spec = make_spec(tmp_path)
    backend.submit(spec, ctx_for(tmp_path, "ut-job-one", log.append))
    assert len(puts) == 1
    backend.submit(spec, ctx_for(tmp_path, "ut-job-two", log.append))
    assert len(puts) == 1, "the second job must reuse the object already in S3"
    assert len(heads) == 2
    assert any("skipped" in m for m in log)
    assert len(aws.jobs()) == 2
    trains = {j.training_data_config["s3Uri"] for j in aws.jobs().values()}
    assert len(trains) == 1


def test_kms_key_encrypts_uploads_and_the_model(aws, tmp_path):
    kms = "1234abcd-12ab-34cd-56ef-1234567890ab"
    spec = make_spec(tmp_path, options={"kms_key_id": kms})
    BedrockBackend().submit(spec, ctx_for(tmp_path, "ut-kms"))
    s3 = aws.client("s3")
    key = next(iter(objects(aws)))
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(kms)
    assert aws.job("ut-kms").custom_model_kms_key_id == kms


def test_rerun_never_sends_a_second_create(aws, tmp_path):
    spec = make_spec(tmp_path)
    first_backend = BedrockBackend()
    creates = count_calls(first_backend.client("bedrock"), "CreateModelCustomizationJob")
    ref1 = first_backend.submit(spec, ctx_for(tmp_path, "ut-rerun"))
    ref2 = first_backend.submit(spec, ctx_for(tmp_path, "ut-rerun"))
    # a new process after a crash: a fresh backend, same job id
    fresh = BedrockBackend()
    fresh_creates = count_calls(fresh.client("bedrock"), "CreateModelCustomizationJob")
    fresh_puts = count_calls(fresh.client("s3"), "PutObject")
    ref3 = fresh.submit(spec, ctx_for(tmp_path, "ut-rerun"))
    assert ref1.remote_id == ref2.remote_id == ref3.remote_id
    assert len(creates) == 1 and fresh_creates == [] and fresh_puts == []
    assert list(aws.jobs()) == ["ut-rerun"]


def test_lost_list_result_still_attaches_instead_of_duplicating(aws, tmp_path):
    """The create reached AWS but the re-run's lookup misses it (eventual consistency): the
    conflicting create is answered by attaching to the existing job, not by a second one."""
    spec = make_spec(tmp_path)
    ref1 = BedrockBackend().submit(spec, ctx_for(tmp_path, "ut-race"))
    backend = BedrockBackend()
    client = backend.client("bedrock")
    misses = {"n": 0}

    def stale_list(**kwargs):
        if misses["n"] == 0:
            misses["n"] += 1
            return AWSResponse("http://stale", 200, {}, None), {"modelCustomizationJobSummaries": []}
        return None

    client.meta.events.register("before-call.bedrock.ListModelCustomizationJobs", stale_list)
    creates = count_calls(client, "CreateModelCustomizationJob")
    ref2 = backend.submit(spec, ctx_for(tmp_path, "ut-race"))
    assert ref2.remote_id == ref1.remote_id
    assert len(creates) == 1  # sent once, refused by the fake as in use, then attached
    assert len(aws.jobs()) == 1


def test_find_needs_the_derived_name_and_tag(aws, tmp_path):
    backend = BedrockBackend()
    ref = backend.submit(make_spec(tmp_path), ctx_for(tmp_path, "ut-find-me"))
    assert backend.find("ut-find-me").remote_id == ref.remote_id
    assert backend.find("ut-find") is None  # a prefix of the name is not the job
    # a job with the derived name but another unitune id is not ours
    aws.client("bedrock").create_model_customization_job(
        jobName=job_name_for("ut-other"), customModelName="other", roleArn=aws.role,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{BUCKET}/x.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{BUCKET}/out/"}, hyperParameters={},
        jobTags=[{"key": TAG_JOB_ID, "value": "ut-someone-else"}])
    assert backend.find("ut-other") is None


def test_plan_uploads_nothing_and_shows_destinations(aws, tmp_path):
    backend = BedrockBackend()
    plan = backend.plan(make_spec(tmp_path, validation=0.25))
    assert plan.ok, plan.problems
    assert objects(aws) == {}
    assert aws.jobs() == {}
    assert [u.examples for u in plan.uploads] == [15, 5]
    assert all(u.destination.startswith(f"s3://{BUCKET}/unitune/data/") for u in plan.uploads)
    assert all(u.format == "bedrock-converse" for u in plan.uploads)
    assert any("hosting can cost far more than training" in n for n in plan.notes)


def test_env_overrides_bucket_and_role(aws, tmp_path, monkeypatch):
    other = "unitune-env-bucket"
    aws.client("s3").create_bucket(Bucket=other)
    monkeypatch.setenv("UNITUNE_BEDROCK_BUCKET", other)
    monkeypatch.setenv("UNITUNE_BEDROCK_ROLE_ARN", "arn:aws:iam::123456789012:role/from-env")
    BedrockBackend().submit(make_spec(tmp_path), ctx_for(tmp_path, "ut-env"))
    job = aws.job("ut-env")
    assert job.role_arn.endswith("role/from-env")
    assert job.training_data_config["s3Uri"].startswith(f"s3://{other}/")


def test_missing_bucket_is_refused_before_any_call(aws, tmp_path):
    from unitune.spec import JobSpec

    spec = make_spec(tmp_path)
    raw = spec.model_dump(mode="json", exclude={"source_dir"})
    raw["backend_options"] = {"bedrock": {"role_arn": aws.role}}
    spec = JobSpec.from_dict(raw)
    backend = BedrockBackend()
    assert any(p.code == "option_missing" for p in backend.check(spec))
    with pytest.raises(SpecError, match="bucket") as err:
        backend.submit(spec, ctx_for(tmp_path, "ut-nobucket"))
    assert "UNITUNE_BEDROCK_BUCKET" in err.value.hint
    assert objects(aws) == {} and aws.jobs() == {}


def test_bad_data_is_refused_before_upload(aws, tmp_path):
    records = [{"messages": [{"role": "user", "content": f"User: hi {i}"},
                             {"role": "assistant", "content": "hello"}]} for i in range(10)]
    spec = make_spec(tmp_path, records=records)
    with pytest.raises(DataError) as err:
        BedrockBackend().submit(spec, ctx_for(tmp_path, "ut-bad"))
    assert "User:" in str(err.value)
    assert err.value.report is not None and err.value.report.errors
    assert objects(aws) == {} and aws.jobs() == {}


def test_dpo_is_unsupported(aws, tmp_path):
    from unitune.spec import JobSpec

    raw = make_spec(tmp_path).model_dump(mode="json", exclude={"source_dir"})
    raw["method"] = "dpo"
    spec = JobSpec.from_dict(raw)
    backend = BedrockBackend()
    assert not backend.capabilities().get("method:dpo")
    with pytest.raises(Unsupported):
        backend.submit(spec, ctx_for(tmp_path, "ut-dpo"))


def test_llama_job_in_its_own_region_is_found_without_the_spec(aws, tmp_path):
    """The spec puts the job in us-west-2 while the AWS chain says us-east-1: `find(key)` (what
    the client calls after a crash, without a spec) still finds it."""
    aws.client("s3", "us-west-2").create_bucket(
        Bucket="unitune-west", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    spec = make_spec(tmp_path, model="meta.llama3-1-8b-instruct-v1:0:128k", n=100,
                     options={"region": "us-west-2", "bucket": "unitune-west"},
                     hyper={"epochs": 2, "batch_size": 1, "learning_rate": 0.0001})
    ref = BedrockBackend().submit(spec, ctx_for(tmp_path, "ut-west"))
    assert ref.extra["region"] == "us-west-2" and ":us-west-2:" in ref.remote_id
    job = aws.job("ut-west", region="us-west-2")
    assert job.hyper_parameters == {"epochCount": "2", "batchSize": "1", "learningRate": "0.0001"}
    body = aws.client("s3", "us-west-2").get_object(
        Bucket="unitune-west", Key=job.training_data_config["s3Uri"].split("/", 3)[3])["Body"].read()
    first = json.loads(body.splitlines()[0])
    assert set(first) == {"prompt", "completion"}
    found = BedrockBackend().find("ut-west")
    assert found is not None and found.remote_id == ref.remote_id
    assert BedrockBackend().get(found).raw_status == "InProgress"


def test_vpc_and_metadata_tags_are_sent(aws, tmp_path):
    from unitune.spec import JobSpec

    raw = make_spec(tmp_path, options={"vpc": {"subnet_ids": ["subnet-1"],
                                               "security_group_ids": ["sg-1"]}}).model_dump(
        mode="json", exclude={"source_dir"})
    raw["metadata"] = {"team": "support"}
    BedrockBackend().submit(JobSpec.from_dict(raw), ctx_for(tmp_path, "ut-vpc"))
    job = aws.job("ut-vpc")
    assert job.vpc_config == {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}
    assert {"key": "team", "value": "support"} in job.job_tags


def test_list_remote_shows_the_newest_jobs(aws, tmp_path):
    backend = BedrockBackend()
    backend.submit(make_spec(tmp_path), ctx_for(tmp_path, "ut-listed"))
    snaps = backend.list_remote(limit=5)
    assert [s.ref.extra["job_name"] for s in snaps] == ["ut-listed"]
    assert snaps[0].raw_status == "InProgress"


def test_importing_the_backend_does_not_import_boto3():
    import subprocess
    import sys

    code = ("import sys, unitune.providers.bedrock as b; b.BedrockBackend().capabilities(); "
            "print('boto3' in sys.modules or 'botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_profile_from_the_spec_is_kept_for_later_calls(aws, tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    creds.write_text("[tuning]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    spec = make_spec(tmp_path, options={"profile": "tuning"})
    ref = BedrockBackend().submit(spec, ctx_for(tmp_path, "ut-profile"))
    assert ref.extra["profile"] == "tuning"
    # a later `unitune status` has no spec: the profile travels in the ref, credentials do not
    assert "profilesecret" not in json.dumps(ref.model_dump())
    assert BedrockBackend().get(ref).raw_status == "InProgress"


def test_check_then_submit_converts_once(aws, tmp_path, monkeypatch):
    """`check` and `submit` both prepare the data; the conversion itself runs once (the
    module-level converter is wrapped to count, not replaced)."""
    from unitune.data import convert as convert_mod

    calls: list = []
    real = convert_mod.convert_file
    monkeypatch.setattr(convert_mod, "convert_file",
                        lambda *a, **kw: calls.append(a[:2]) or real(*a, **kw))
    spec = make_spec(tmp_path, validation=0.2)
    backend = BedrockBackend()
    checked = backend.check(spec)
    assert not [p for p in checked if p.severity == "error"]
    backend.submit(spec, ctx_for(tmp_path, "ut-once-1"))
    assert len(calls) == 1  # before the cache: 2 (check, then submit again)
    BedrockBackend().check(spec)  # a new process (`unitune plan`/`check` later) hits the cache
    assert len(calls) == 1
    assert [p.to_dict() for p in BedrockBackend().check(spec)] == [p.to_dict() for p in checked]
    stored = objects(aws)
    assert len(stored) == 2
    for key, body in stored.items():
        assert key == f"unitune/data/{hashlib.sha256(body).hexdigest()}.jsonl"
