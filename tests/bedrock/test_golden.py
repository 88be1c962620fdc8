"""Golden create requests per model family (see golden_cases.py): what moto received on the wire
when the spec was submitted, the pure table (spec in → request out, no fake) and `plan`'s
`request` (placeholders where only submit knows the value) all equal the pinned request."""
from __future__ import annotations

import os

import pytest

from unitune.pipeline import Pipeline, prepare
from unitune.provider import Ids, is_placeholder
from unitune.providers.bedrock import BedrockProvider
from unitune.retry import RetryPolicy

from .conftest import make_spec
from .golden_cases import CASES, SPEC_TAG, golden, key_for, normalise, write_golden

REGEN = bool(os.environ.get("UNITUNE_REGEN_GOLDEN"))
# Claude 3 Haiku (end of life 2026-09-10), Titan Text and Cohere Command (no longer in AWS's
# fine-tunable table, 2026-12-04) are refused today; their goldens pin the wire contract as it was
# while they were tunable, so this suite evaluates lifecycle dates as of 2026-06-01. The refusals
# themselves are tested in test_families.py and tests/catalog.
GOLDEN_TODAY = "2026-06-01"


@pytest.fixture(autouse=True)
def _while_every_family_was_tunable(monkeypatch):
    monkeypatch.setenv("UNITUNE_TODAY", GOLDEN_TODAY)


def pipe() -> Pipeline:
    return Pipeline(BedrockProvider(), policy=RetryPolicy(max_retries=0))


def ids_for(name: str, spec) -> Ids:
    return Ids(job_id=key_for(name), key=key_for(name), spec_hash=spec.spec_hash())


@pytest.mark.parametrize("name", sorted(CASES))
def test_sent_request_matches_the_golden(aws, tmp_path, name):
    spec = make_spec(tmp_path, **CASES[name])
    p = pipe()
    p.submit(p.prepare_submission(spec), ids_for(name, spec))
    (got,) = aws.front.creates
    data = normalise(got.region, got.body)
    if REGEN:
        write_golden(name, data)
    assert data == golden(name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_table_spec_in_request_out(tmp_path, monkeypatch, name):
    """The pure translation with real ids and the S3 destinations: no fake, no SDK call."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    spec = make_spec(tmp_path, **CASES[name])
    provider, p = BedrockProvider(), pipe()
    options = p.options(spec)
    location = provider.locate(spec, options)
    prepared = prepare(spec, provider.data_target(spec, options))
    for f in prepared.files.values():
        f.uri = provider.destination(f, location, options)
    out = provider.translate(spec, prepared, location, options, ids_for(name, spec))
    assert not [p.message for p in out.problems if p.severity == "error"]
    assert normalise(location.region, out.request) == golden(name)


def matches(planned, pinned, path="request") -> list[str]:
    if is_placeholder(planned):
        return []
    if isinstance(planned, dict) and isinstance(pinned, dict):
        out = [f"{path}.{k}: keys differ" for k in set(planned) ^ set(pinned)]
        return out + [d for k in planned if k in pinned
                      for d in matches(planned[k], pinned[k], f"{path}.{k}")]
    if isinstance(planned, list) and isinstance(pinned, list) and len(planned) == len(pinned):
        return [d for i, (a, b) in enumerate(zip(planned, pinned))
                for d in matches(a, b, f"{path}[{i}]")]
    return [] if planned == pinned else [f"{path}: planned {planned!r}, pinned {pinned!r}"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_plan_request_is_the_golden_with_placeholders(tmp_path, monkeypatch, name):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    spec = make_spec(tmp_path, **CASES[name])
    plan = pipe().plan(spec)
    assert plan.ready, [p.message for p in plan.problems if p.severity == "error"]
    pinned = golden(name)
    assert plan.location.region == pinned["region"]
    assert matches(normalise("", plan.request)["request"], pinned["request"]) == []
    tags = {t["key"]: t["value"] for t in plan.request["jobTags"]}
    assert tags[SPEC_TAG] == spec.spec_hash()  # known at plan time
    placeholders = sorted(k for k, v in plan.request.items() if is_placeholder(v))
    assert placeholders == ["clientRequestToken", "customModelName", "jobName"]
    assert is_placeholder(plan.request["outputDataConfig"]["s3Uri"])
    assert plan.request["trainingDataConfig"]["s3Uri"].startswith("s3://unitune-test-bucket/")
