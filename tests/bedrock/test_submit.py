"""Submit against moto through the core's pipeline: S3 content-hash uploads (skip, SSE-KMS),
every missing setting reported at once before anything happens, a create that meets its own
job attaches to it (the core looks it up by key), lookup in the stored region only, plan/check
upload nothing."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from botocore.awsrequest import AWSResponse

from unitune.errors import DataError, InvalidRequest, SpecError, Unsupported
from unitune.job import RemoteRef
from unitune.pipeline import Pipeline
from unitune.provider import Ids, Location, Prepared
from unitune.providers.bedrock import BedrockProvider
from unitune.providers.bedrock.aws import client
from unitune.providers.bedrock.naming import TAG_JOB_ID, job_name_for, token_for
from unitune.retry import RetryPolicy
from unitune.spec import JobSpec

from .conftest import BUCKET, ROLE, make_spec

LLAMA = "meta.llama3-1-8b-instruct-v1:0:128k"


def pipe(**policy) -> Pipeline:
    return Pipeline(BedrockProvider(), policy=RetryPolicy(**{"max_retries": 3, "base": 0.01,
                                                             "cap": 0.02, **policy}))


def submit(spec: JobSpec, key: str, p: Pipeline | None = None) -> RemoteRef:
    p = p or pipe()
    return p.submit(p.prepare_submission(spec), Ids(key, key, spec.spec_hash()))


def objects(aws) -> dict[str, bytes]:
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def respec(spec: JobSpec, **changes) -> JobSpec:
    raw = spec.model_dump(mode="json", exclude={"source_dir"})
    raw.update(changes)
    return JobSpec.from_dict(raw)


def test_submit_uploads_under_content_hash_and_sends_the_create(aws, tmp_path):
    spec = make_spec(tmp_path, hyper={"epochs": 3, "learning_rate": 2e-5}, validation=0.2)
    ref = submit(spec, "ut-20261128-abc123")
    stored = objects(aws)
    assert len(stored) == 2 and aws.front.s3_puts == 2  # train + validation split
    for key, body in stored.items():
        assert key == f"unitune/data/{hashlib.sha256(body).hexdigest()}.jsonl"
    job = aws.job(job_name_for("ut-20261128-abc123"))
    assert ref.remote_id == job.job_arn
    assert ref.extra["region"] == "us-east-1" and ref.extra["job_name"] == job.job_name
    assert job.client_request_token == token_for("ut-20261128-abc123")
    assert {"key": TAG_JOB_ID, "value": "ut-20261128-abc123"} in job.job_tags
    assert job.hyper_parameters == {"epochCount": "3", "learningRate": "0.00002"}
    assert job.validation_data_config["validators"][0]["s3Uri"] in {
        f"s3://{BUCKET}/{k}" for k in stored}
    assert job.output_data_config["s3Uri"] == f"s3://{BUCKET}/unitune/output/{job.job_name}/"
    bodies = sorted(stored.values(), key=len)  # the converse schema, 16 + 4 records
    assert bodies[0].count(b"\n") == 4 and bodies[1].count(b"\n") == 16
    assert b'"schemaVersion":"bedrock-conversation-2024"' in bodies[1]


def test_identical_data_is_uploaded_once(aws, tmp_path):
    spec = make_spec(tmp_path)
    submit(spec, "ut-job-one")
    assert aws.front.s3_puts == 1
    submit(spec, "ut-job-two")  # HeadObject finds the object: no second PUT
    assert aws.front.s3_puts == 1
    assert len(aws.jobs()) == 2
    assert len({j.training_data_config["s3Uri"] for j in aws.jobs().values()}) == 1


def test_kms_key_encrypts_uploads_and_the_model(aws, tmp_path):
    kms = "1234abcd-12ab-34cd-56ef-1234567890ab"
    submit(make_spec(tmp_path, options={"kms_key_id": kms}), "ut-kms")
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=next(iter(objects(aws))))
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(kms)
    assert aws.job("ut-kms").custom_model_kms_key_id == kms


def test_a_create_meeting_its_own_job_attaches_to_it(aws, tmp_path):
    """moto refuses a second create with the same name (AWS would ignore the repeated token):
    the refusal is retryable, so the core looks the job up by its key instead of failing."""
    spec = make_spec(tmp_path)
    ref1 = submit(spec, "ut-rerun")
    ref2 = submit(spec, "ut-rerun", Pipeline(BedrockProvider(), policy=RetryPolicy(
        max_retries=2, base=0.01, cap=0.02)))  # a fresh provider: a new process after a crash
    assert ref1.remote_id == ref2.remote_id
    assert len(aws.front.creates) == 2 and list(aws.jobs()) == ["ut-rerun"]
    assert aws.front.s3_puts == 1


def test_lost_list_result_still_attaches_instead_of_duplicating(aws, tmp_path):
    """The re-run's first look-up misses the job (eventual consistency): the core tries the
    create again, is refused again, looks again and attaches — still one job."""
    spec = make_spec(tmp_path)
    ref1 = submit(spec, "ut-race")
    misses = {"n": 0}

    def stale_list(**kwargs):
        if misses["n"] == 0:
            misses["n"] += 1
            return AWSResponse("http://stale", 200, {}, None), {"modelCustomizationJobSummaries": []}
        return None

    bedrock = client("bedrock", "us-east-1")  # the cached client the provider uses
    bedrock.meta.events.register("before-call.bedrock.ListModelCustomizationJobs", stale_list)
    try:
        ref2 = submit(spec, "ut-race")
    finally:
        bedrock.meta.events.unregister("before-call.bedrock.ListModelCustomizationJobs",
                                       stale_list)
    assert ref2.remote_id == ref1.remote_id and misses["n"] == 1
    assert len(aws.front.creates) == 3 and len(aws.jobs()) == 1


def test_a_name_taken_by_another_job_is_not_attached_to(aws, tmp_path):
    aws.client("bedrock").create_model_customization_job(
        jobName=job_name_for("ut-taken"), customModelName="other", roleArn=aws.role,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{BUCKET}/x.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{BUCKET}/out/"}, hyperParameters={},
        jobTags=[{"key": TAG_JOB_ID, "value": "ut-someone-else"}])
    with pytest.raises(InvalidRequest, match="ResourceInUse"):
        submit(make_spec(tmp_path), "ut-taken", pipe(max_retries=2))
    assert len(aws.jobs()) == 1


def test_lookup_needs_the_derived_name_and_tag(aws, tmp_path):
    provider, options = BedrockProvider(), pipe().options()
    here = Location(backend="bedrock", region="us-east-1")
    ref = submit(make_spec(tmp_path), "ut-find-me")
    assert provider.lookup("ut-find-me", here, options).remote_id == ref.remote_id
    assert provider.lookup("ut-find", here, options) is None  # a prefix of the name is not it
    aws.client("bedrock").create_model_customization_job(
        jobName=job_name_for("ut-other"), customModelName="other", roleArn=aws.role,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{BUCKET}/x.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{BUCKET}/out/"}, hyperParameters={},
        jobTags=[{"key": TAG_JOB_ID, "value": "ut-someone-else"}])
    assert provider.lookup("ut-other", here, options) is None  # the name, another unitune id


def test_plan_uploads_nothing_and_shows_destinations(aws, tmp_path):
    plan = pipe().plan(make_spec(tmp_path, validation=0.25))
    assert plan.ready, plan.problems
    assert objects(aws) == {} and aws.jobs() == {} and aws.front.bedrock_calls == 0
    assert [u.examples for u in plan.uploads] == [15, 5]
    assert all(u.destination.startswith(f"s3://{BUCKET}/unitune/data/") for u in plan.uploads)
    assert all(u.format == "bedrock-converse" for u in plan.uploads)
    assert plan.request["trainingDataConfig"]["s3Uri"] == plan.uploads[0].destination
    assert any("hosting can cost far more than training" in n for n in plan.notes)
    explained = {r.vendor_param.split(".")[0] for r in plan.rows if r.vendor_param}
    assert set(plan.request) <= explained | {"hyperParameters"}


def test_env_overrides_bucket_and_role(aws, tmp_path, monkeypatch):
    other = "unitune-env-bucket"
    aws.client("s3").create_bucket(Bucket=other)
    monkeypatch.setenv("UNITUNE_BEDROCK_BUCKET", other)
    monkeypatch.setenv("UNITUNE_BEDROCK_ROLE_ARN", "arn:aws:iam::123456789012:role/from-env")
    monkeypatch.setenv("UNITUNE_BEDROCK_VPC", '{"subnet_ids": ["subnet-9"], '
                                              '"security_group_ids": ["sg-9"]}')
    submit(make_spec(tmp_path), "ut-env")
    job = aws.job("ut-env")
    assert job.role_arn.endswith("role/from-env")
    assert job.training_data_config["s3Uri"].startswith(f"s3://{other}/")
    assert job.vpc_config == {"subnetIds": ["subnet-9"], "securityGroupIds": ["sg-9"]}


def test_every_missing_setting_is_reported_at_once_before_any_call(aws, tmp_path):
    spec = respec(make_spec(tmp_path), backend_options={"bedrock": {}})
    plan = pipe().plan(spec)
    assert not plan.ready
    missing = sorted(p.path for p in plan.problems if p.code == "option_missing")
    assert missing == ["backend_options.bedrock.bucket", "backend_options.bedrock.role_arn"]
    assert all(p.severity == "error" and "UNITUNE_BEDROCK_" in p.hint for p in plan.problems
               if p.code == "option_missing")
    assert plan.request["roleArn"] == "<role-arn>"
    assert plan.request["trainingDataConfig"]["s3Uri"].startswith("<bucket>/unitune/data/")
    with pytest.raises(SpecError) as err:
        pipe().prepare_submission(spec)
    assert "bucket" in str(err.value) and "role_arn" in str(err.value)
    assert objects(aws) == {} and aws.jobs() == {} and aws.front.bedrock_calls == 0


def test_options_are_typed(aws, tmp_path):
    spec = make_spec(tmp_path, options={"vpc": {"subnet_ids": ["subnet-1"]}, "retry_mode": "x"})
    plan = pipe().plan(spec)
    assert not plan.ready and any("vpc" in p.message for p in plan.problems)
    plan = pipe().plan(make_spec(tmp_path, options={"retry_mode": "adaptive"}))
    assert plan.ready and any(p.code == "option_ignored" for p in plan.problems)


def test_bad_data_is_refused_before_upload(aws, tmp_path):
    records = [{"messages": [{"role": "user", "content": f"User: hi {i}"},
                             {"role": "assistant", "content": "hello"}]} for i in range(10)]
    with pytest.raises(DataError) as err:
        pipe().prepare_submission(make_spec(tmp_path, records=records))
    assert "User:" in str(err.value)
    assert err.value.report is not None and err.value.report.errors
    assert objects(aws) == {} and aws.jobs() == {}


def test_dpo_is_unsupported(aws, tmp_path):
    spec = respec(make_spec(tmp_path), method="dpo")
    assert not BedrockProvider().capabilities().get("method:dpo")
    with pytest.raises(Unsupported):
        pipe().prepare_submission(spec)


def test_llama_job_is_found_from_its_stored_location_only(aws, tmp_path):
    """The spec puts the job in us-west-2 while the AWS chain says us-east-1: the location
    stored with the job finds it; no other region is searched."""
    spec = make_spec(tmp_path, model=LLAMA, n=100, options={"region": "us-west-2"},
                     hyper={"epochs": 2, "batch_size": 1, "learning_rate": 0.0001})
    p = pipe()
    sub = p.prepare_submission(spec)
    assert sub.location == Location(backend="bedrock", region="us-west-2",
                                    extra={"region_source": "option"})
    ref = p.submit(sub, Ids("ut-west", "ut-west", spec.spec_hash()))
    assert ref.extra["region"] == "us-west-2" and ":us-west-2:" in ref.remote_id
    job = aws.job("ut-west", region="us-west-2")
    body = aws.client("s3").get_object(
        Bucket=BUCKET, Key=job.training_data_config["s3Uri"].split("/", 3)[3])["Body"].read()
    assert set(json.loads(body.splitlines()[0])) == {"prompt", "completion"}
    stored = Location.model_validate_json(sub.location.model_dump_json())
    found = pipe().lookup("ut-west", stored)
    assert found is not None and found.remote_id == ref.remote_id
    assert pipe().lookup("ut-west", Location(backend="bedrock", region="us-east-1")) is None
    assert BedrockProvider().read(found).raw_status == "InProgress"


def test_a_one_region_family_is_sent_to_its_region_not_the_chains(aws, tmp_path, monkeypatch):
    """Llama tunes only in us-west-2: with the AWS chain on us-east-1 the job is located (and
    stored) in us-west-2, said in the plan; an explicit other region is refused, naming it."""
    provider, p = BedrockProvider(), pipe()
    spec = make_spec(tmp_path, model=LLAMA, n=100)
    loc = provider.locate(spec, p.options(spec))  # AWS_DEFAULT_REGION is us-east-1
    assert loc.region == "us-west-2"
    assert loc.extra == {"region_source": "model", "chain_region": "us-east-1"}
    plan = p.plan(spec)
    assert not any(x.code == "region" for x in plan.problems)
    assert any("not to the AWS chain's region us-east-1" in n for n in plan.notes)
    nova = make_spec(tmp_path, n=20)  # Nova tunes in us-east-1: the chain's region is kept
    assert provider.locate(nova, p.options(nova)).extra == {"region_source": "aws-chain"}
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert provider.locate(spec, p.options(spec)).region == "us-west-2"
    wrong = make_spec(tmp_path, model=LLAMA, n=100, options={"region": "us-east-1"})
    plan = p.plan(wrong)
    (bad,) = [x for x in plan.problems if x.code == "region"]
    assert bad.severity == "error" and not plan.ready
    assert "only in us-west-2, not in us-east-1" in bad.message and "us-west-2" in bad.hint


def test_importing_the_provider_does_not_import_boto3():
    code = ("import sys, unitune.providers.bedrock as b; b.BedrockProvider().capabilities(); "
            "print('boto3' in sys.modules or 'botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_profile_from_the_spec_travels_with_the_job(aws, tmp_path, monkeypatch):
    creds = tmp_path / "credentials"
    creds.write_text("[tuning]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    spec = make_spec(tmp_path, options={"profile": "tuning"})
    p = pipe()
    sub = p.prepare_submission(spec)
    assert sub.location.extra == {"profile": "tuning", "region_source": "aws-chain"}
    ref = p.submit(sub, Ids("ut-profile", "ut-profile", spec.spec_hash()))
    assert ref.extra["profile"] == "tuning"
    # a later `unitune status` has no spec: the profile travels in the ref, credentials do not
    assert "profilesecret" not in json.dumps(ref.model_dump())
    assert BedrockProvider().read(ref).raw_status == "InProgress"


def test_translate_is_pure(tmp_path):
    """translate imports no SDK and calls nothing: a fresh process builds the table alone."""
    spec_path = tmp_path / "spec.json"
    make_spec(tmp_path, validation=0.2)  # writes the data
    spec_path.write_text(json.dumps({
        "name": "pure", "models": {"bedrock": "amazon.nova-micro-v1:0:128k"},
        "data": {"train": str(tmp_path / "data" / "train.jsonl"), "validation": 0.2},
        "backend_options": {"bedrock": {"bucket": BUCKET, "role_arn": ROLE}}}))
    code = (
        "import json, sys\n"
        "from unitune.spec import JobSpec\n"
        "from unitune.pipeline import prepare\n"
        "from unitune.provider import Ids, Location\n"
        "from unitune.providers.bedrock import BedrockOptions, BedrockProvider\n"
        "spec = JobSpec.load(sys.argv[1]); p = BedrockProvider()\n"
        "opts = BedrockOptions.model_validate(spec.backend_options['bedrock'])\n"
        "loc = Location(backend='bedrock', region='us-east-1')\n"
        "prep = prepare(spec, p.data_target(spec, opts))\n"
        "for f in prep.files.values(): f.uri = p.destination(f, loc, opts)\n"
        "t = p.translate(spec, prep, loc, opts, Ids('k1', 'k1', 'h'))\n"
        "print(json.dumps([t.request['jobName'], sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('boto3', 'botocore', 's3transfer'))]))\n")
    out = subprocess.run([sys.executable, "-c", code, str(spec_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["k1", []]


def test_a_spec_without_a_bedrock_model_is_a_spec_error(tmp_path):
    spec = respec(make_spec(tmp_path), models={"openai": "gpt-4o-mini-2024-07-18"})
    provider, options = BedrockProvider(), pipe().options(spec)
    assert provider.data_target(spec, options).format is None  # no crash before translate
    out = provider.translate(spec, Prepared(), provider.locate(spec, options), options, Ids())
    assert [(p.code, p.path) for p in out.problems] == [("no_model", "models.bedrock")]
    with pytest.raises(SpecError, match="no base model"):
        pipe().prepare_submission(spec)
