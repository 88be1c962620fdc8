"""The spec variants whose create request is pinned in tests/openai/golden/*.json: per flavour
(OpenAI, Azure) and model family (gpt-4o-mini SFT, gpt-4.1-mini DPO, a further-tuned `ft:` model),
hyperparameters set vs auto, a validation file vs a fraction, suffix and metadata, the wandb and
raw integrations options, Azure's trainingType.

Each golden holds the JSON body of POST /fine_tuning/jobs as the fake server received it on the
wire, plus a summary of each uploaded file (examples and SHA-256 of the bytes the fake got).
Volatile values are normalised: uploaded file ids → "<upload:train>" / "<upload:validation>",
the idempotency key and job id → "<idempotency-key>" / "<job-id>", the spec hash (the spec holds
tmp paths) → "<spec-hash>". Regenerate with UNITUNE_REGEN_GOLDEN=1 (and say why in the change).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"
KEY, JOB = "ut-golden-key", "ut-golden-job"
MINI = "gpt-4o-mini-2024-07-18"
DPO_MODEL = "gpt-4.1-mini-2025-04-14"
FAST = {"poll_interval": 0.01, "today": "2026-12-01"}


def _chat(n: int, start: int = 0) -> str:
    return "".join(json.dumps({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"What is {i} + {i}?"},
        {"role": "assistant", "content": f"{2 * i}"}]}, ensure_ascii=False) + "\n"
        for i in range(start, start + n))


def _pairs(n: int, start: int = 0) -> str:
    return "".join(json.dumps({
        "input": {"messages": [{"role": "user", "content": f"Say hi #{i}"}]},
        "preferred_output": [{"role": "assistant", "content": f"Hi #{i}!"}],
        "non_preferred_output": [{"role": "assistant", "content": "no"}]}) + "\n"
        for i in range(start, start + n))


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"chat.jsonl": _chat(12), "val.jsonl": _chat(4, 100), "chat20.jsonl": _chat(20),
             "dpo.jsonl": _pairs(12), "dpo_val.jsonl": _pairs(4, 100)}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _spec(backend: str, model: str = MINI, options: dict[str, Any] | None = None,
          **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "golden adder", "backend": backend,
                            "models": {backend: model}, "data": {"train": "chat.jsonl"},
                            "backend_options": {backend: {**FAST, **(options or {})}}}
    spec.update(kw)
    return spec


# name -> (flavour, spec dict written against write_data's folder)
CASES: dict[str, dict[str, Any]] = {
    "openai-sft-auto": _spec("openai"),
    "openai-sft-valfile-hyper-suffix-metadata": _spec(
        "openai", data={"train": "chat.jsonl", "validation": "val.jsonl"},
        hyperparameters={"epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5,
                         "seed": 7, "learning_rate": 1e-4, "warmup_ratio": 0.1},
        suffix="add-v1", metadata={"team": "ml", "cost center": "42"}),
    "openai-sft-fraction-seed": _spec(
        "openai", data={"train": "chat20.jsonl", "validation": 0.25},
        hyperparameters={"epochs": 3, "seed": 11}),
    "openai-dpo-beta-valfile": _spec(
        "openai", DPO_MODEL, method="dpo",
        data={"train": "dpo.jsonl", "validation": "dpo_val.jsonl"},
        hyperparameters={"epochs": 1, "beta": 0.2}),
    "openai-dpo-auto": _spec("openai", DPO_MODEL, method="dpo", data={"train": "dpo.jsonl"}),
    "openai-sft-wandb": _spec(
        "openai", options={"wandb": {"project": "p1", "entity": "team", "tags": ["a", "b"]}},
        hyperparameters={"epochs": 3}),
    "openai-sft-integrations": _spec(
        "openai", options={"integrations": [{"type": "wandb", "wandb": {"project": "raw",
                                                                         "name": "run-1"}}]}),
    "openai-ft-model-beta-not-applied": _spec(
        "openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", hyperparameters={"beta": 0.3}),
    "azure-sft-auto": _spec("azure"),
    "azure-sft-training-type-hyper": _spec(
        "azure", options={"training_type": 2},
        data={"train": "chat.jsonl", "validation": "val.jsonl"},
        hyperparameters={"epochs": 2, "batch_size": 8, "seed": 5}),
    "azure-dpo": _spec("azure", DPO_MODEL, method="dpo", data={"train": "dpo.jsonl"},
                       hyperparameters={"beta": 0.1}),
}


def flavour(name: str) -> str:
    return CASES[name]["backend"]


def normalise(body: dict[str, Any], files: dict[str, bytes], spec_hash: str) -> dict[str, Any]:
    """The golden form of one create body: ids and hashes replaced by placeholders; `files`
    (file id → the bytes the fake received) summarised per upload."""
    body = json.loads(json.dumps(body))
    uploads = {}
    for field, which in (("training_file", "train"), ("validation_file", "validation")):
        fid = body.get(field)
        if isinstance(fid, str) and fid in files:
            data = files[fid]
            uploads[which] = {"examples": sum(1 for ln in data.splitlines() if ln.strip()),
                              "sha256": hashlib.sha256(data).hexdigest()}
            body[field] = f"<upload:{which}>"
    meta = body.get("metadata") or {}
    if meta.get("unitune_spec_hash") == spec_hash:
        meta["unitune_spec_hash"] = "<spec-hash>"
    text = json.dumps(body).replace(KEY, "<idempotency-key>").replace(JOB, "<job-id>")
    return {"request": json.loads(text), "uploads": uploads}


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def write_golden(name: str, data: dict[str, Any]) -> None:
    GOLDEN.mkdir(exist_ok=True)
    (GOLDEN / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
