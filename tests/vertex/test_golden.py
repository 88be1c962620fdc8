"""Golden create requests, per model family and spec variant.

* `<case>.<client>.json`: the tuningJobs body as the fake received it on the wire from that client
  (GAPIC encodes int64 as strings and enums as numbers; google-genai as numbers and names).
* the same body in one encoding (proto3 JSON: both clients send the same request) equals the
  google-genai golden, and so does `translate()` — spec in, request out, no network: the table.

Regenerate with REGEN_GOLDEN=1 (then review the diff). Volatile values are normalised:
the uploaded dataset uris become "<upload:train>" / "<upload:validation>" (after checking they
are content-addressed gs:// objects), the idempotency key "<idempotency-key>", the job id
"<job-id>".
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from unitune.provider import Ids
from unitune.testing.vertex_server import canonical_body

from .conftest import BUCKET, make_spec, pipeline, submit, write_chat

GOLDEN = Path(__file__).parent / "golden"
KEY, JOB = "ut-golden-key", "ut-golden-job"

CASES: dict[str, dict] = {
    "flash-basic": {},
    "flash-auto": {"hyperparameters": {}, "adapter": {"type": "lora", "r": 16}},
    "flash-validation-file": {"data": {"train": "train.jsonl", "validation": "val.jsonl"}},
    "flash-validation-fraction": {"data": {"train": "train.jsonl", "validation": 0.25},
                                  "hyperparameters": {"epochs": 3, "seed": 7}},
    "pro-metadata-suffix": {"models": {"vertex": "gemini-2.5-pro"},
                            "adapter": {"type": "lora", "r": 12},
                            "metadata": {"Team": "Search Quality", "cost_center": "ml-42"},
                            "suffix": "support-bot"},
    "flash-lite-v1beta1": {"models": {"vertex": "gemini-2.5-flash-lite"},
                           "adapter": {"type": "lora", "r": 32},
                           "hyperparameters": {"epochs": 5, "learning_rate_multiplier": 2.0},
                           "api_version": "v1beta1"},
    "flash-not-applied": {"hyperparameters": {"epochs": 1, "learning_rate": 0.0001,
                                              "batch_size": 8, "seed": 3, "warmup_ratio": 0.1}},
    # a model tunable today (Gemini 3.5 Flash): the same body shape, its own baseModel
    "gemini-3-5-flash": {"models": {"vertex": "gemini-3.5-flash"},
                         "hyperparameters": {"epochs": 2, "learning_rate_multiplier": 1.0}},
}
_URI = re.compile(rf"^gs://{BUCKET}/unitune/datasets/[0-9a-f]{{64}}\.jsonl$")


def build_spec(tmp_path: Path, kind: str, case: dict):
    case = dict(case)
    write_chat(tmp_path / "val.jsonl", n=4, tag="v")
    version = case.pop("api_version", None)
    spec = make_spec(tmp_path, kind, **case)
    if version:
        opts = dict(spec.backend_options["vertex"], api_version=version)
        spec = spec.model_copy(update={"backend_options": {"vertex": opts}})
    return spec


def normalise(create: dict) -> dict:
    body = json.loads(json.dumps(create["body"]))
    return {"path": create["path"], "body": normalise_body(body)}


def normalise_body(body: dict) -> dict:
    sts = body.get("supervisedTuningSpec", {})
    for field, which in (("trainingDatasetUri", "train"), ("validationDatasetUri", "validation")):
        if field in sts:
            assert _URI.match(sts[field]), sts[field]
            sts[field] = f"<upload:{which}>"
    text = json.dumps(body).replace(KEY, "<idempotency-key>").replace(JOB, "<job-id>")
    return json.loads(text)


def golden(name: str, kind: str) -> dict:
    return json.loads((GOLDEN / f"{name}.{kind}.json").read_text())


def send(harness, spec) -> dict:
    """Submit `spec` once through the core pipeline and return the create request the fake got."""
    submit(spec, key=KEY, job_id=JOB)
    (create,) = [r for r in harness.fake.requests if r["verb"] == "create"]
    return create


@pytest.mark.parametrize("name", list(CASES))
def test_golden_request(harness, tmp_path, name):
    spec = build_spec(tmp_path, harness.kind, CASES[name])
    got = normalise(send(harness, spec))
    path = GOLDEN / f"{name}.{harness.kind}.json"
    if os.environ.get("REGEN_GOLDEN"):
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())
    # both clients send the one request translate() made (in proto3 JSON's one encoding)
    assert canonical_body(got["body"]) == golden(name, "genai")["body"]


@pytest.mark.parametrize("name", list(CASES))
def test_table(tmp_path, name):
    """Spec in → request out: translate() with the real ids, no fake, no SDK call."""
    spec = build_spec(tmp_path, "genai", CASES[name])
    pipe = pipeline()
    sub = pipe.prepare_submission(spec)
    for f in sub.prepared.files.values():
        f.uri = pipe.provider.destination(f, sub.location, sub.options)
    t = pipe.provider.translate(spec, sub.prepared, sub.location, sub.options,
                                Ids(job_id=JOB, key=KEY, spec_hash=spec.spec_hash()))
    want = golden(name, "genai")
    assert normalise_body(t.request) == want["body"]
    assert want["path"] == (f"/{sub.location.extra['api_version']}/projects/"
                            f"{sub.location.project}/locations/{sub.location.region}/tuningJobs")
