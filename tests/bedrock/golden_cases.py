"""The spec variants whose create request is pinned in tests/bedrock/golden/*.json: per model
family (Nova, Llama 3.1, Llama 3.2, Claude 3 Haiku, Titan, Cohere), hyperparameters set vs auto,
a validation file vs a fraction, vendor-only hyperparameters, KMS, VPC and metadata tags.

Each golden holds the region the request was sent to and the request body as moto received it
on the wire; only the spec-hash tag (the spec holds tmp paths) is normalised to a placeholder.
Regenerate with UNITUNE_REGEN_GOLDEN=1 (and say why in the change)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import chat_lines

GOLDEN = Path(__file__).parent / "golden"
NOVA = "amazon.nova-micro-v1:0:128k"
LLAMA31 = "meta.llama3-1-8b-instruct-v1:0:128k"
LLAMA32 = "meta.llama3-2-1b-instruct-v1:0:128k"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0:200k"
TITAN = "amazon.titan-text-express-v1:0:8k"
COHERE = "cohere.command-text-v14:7:4k"
WEST = {"region": "us-west-2"}

# name -> make_spec keyword arguments
CASES: dict[str, dict[str, Any]] = {
    "nova-auto": dict(model=NOVA, n=20),
    "nova-hyper-fraction": dict(model=NOVA, n=30, validation=0.2,
                                hyper={"epochs": 3, "learning_rate": 2e-5, "warmup_ratio": 0.1}),
    "nova-valfile-kms-vpc-metadata": dict(
        model=NOVA, n=20, validation_records=chat_lines(10, prefix="v"),
        metadata={"team": "support", "cost center": "ml/42"},
        options={"kms_key_id": "1234abcd-12ab-34cd-56ef-1234567890ab",
                 "vpc": {"subnet_ids": ["subnet-1", "subnet-2"], "security_group_ids": ["sg-1"]}}),
    "llama31-west": dict(model=LLAMA31, n=100, options=WEST,
                         hyper={"epochs": 2, "batch_size": 1, "learning_rate": 0.0001}),
    "llama32-converse-auto": dict(model=LLAMA32, n=100, options=WEST),
    "claude-multiplier-early-stopping": dict(
        model=CLAUDE, n=48, validation=0.25,
        hyper={"epochs": 4, "batch_size": 16, "learning_rate_multiplier": 0.5},
        options={**WEST, "hyperparameters": {"earlyStoppingPatience": 3,
                                             "earlyStoppingThreshold": 0.01}}),
    "titan-warmup-not-applied": dict(model=TITAN, n=40,
                                     hyper={"epochs": 2, "batch_size": 4, "warmup_ratio": 0.05,
                                            "seed": 3, "weight_decay": 0.1}),
    "cohere-eval-percentage": dict(model=COHERE, n=40, hyper={"epochs": 2, "batch_size": 8},
                                   options={"hyperparameters": {"evalPercentage": 10}}),
}
SPEC_TAG = "unitune-spec"


def key_for(name: str) -> str:
    return f"ut-golden-{name}"


def normalise(region: str, body: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    for tag in body.get("jobTags", []):
        if tag.get("key") == SPEC_TAG:
            tag["value"] = "<spec-hash>"
    return {"region": region, "request": body}


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def write_golden(name: str, data: dict[str, Any]) -> None:
    GOLDEN.mkdir(exist_ok=True)
    (GOLDEN / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
