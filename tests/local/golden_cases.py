"""Spec variants whose worker request is pinned in tests/local/golden/*.json.

Each case is a JobSpec dict written against a data folder holding `chat.jsonl`, `val.jsonl`,
`dpo.jsonl` and a model directory `model/` (config.json only: enough to resolve offline).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHAT = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                      {"role": "assistant", "content": f"Answer: {i}"}]} for i in range(8)]
PAIRS = [{"prompt": f"Question {i}?", "chosen": f"Answer: {i}", "rejected": "No."}
         for i in range(8)]


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("chat.jsonl", CHAT), ("val.jsonl", CHAT[:3]), ("dpo.jsonl", PAIRS)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "config.json").write_text('{"model_type": "llama"}')
    return folder


def _base(**kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "golden", "backend": "local",
                            "base_model": "unitune/tiny-chat", "data": {"train": "chat.jsonl"}}
    spec.update(kw)
    return spec


CASES: dict[str, dict[str, Any]] = {
    "sft_lora_defaults": _base(),
    "sft_qlora_hyper_options": _base(
        adapter={"type": "qlora", "bits": 8, "r": 8, "alpha": 32, "dropout": 0.1,
                 "target_modules": ["q_proj", "v_proj"]},
        hyperparameters={"epochs": 2, "batch_size": 16, "learning_rate": 1e-4,
                         "warmup_ratio": 0.1, "weight_decay": 0.01, "max_seq_length": 512,
                         "seed": 3, "max_steps": 40},
        backend_options={"local": {"precision": "fp32", "packing": False, "save_steps": 10,
                                   "keep_checkpoints": 3, "logging_steps": 2,
                                   "lr_scheduler": "cosine", "micro_tokens": 2048}}),
    "dpo_validation_file": _base(
        method="dpo", data={"train": "dpo.jsonl", "validation": "dpo.jsonl"},
        hyperparameters={"beta": 0.2, "batch_size": 4}),
    "sft_validation_fraction": _base(
        data={"train": "chat.jsonl", "validation": 0.25}, hyperparameters={"seed": 11}),
    "sft_ddp_local_model": _base(
        base_model="model", models={"local": "./model"},
        backend_options={"local": {"gpus": 2, "strategy": "ddp", "device": "cpu",
                                   "eval_steps": 5}}),
    "full_suffix_metadata": _base(
        adapter={"type": "full"}, suffix="mine", metadata={"team": "nlp"},
        data={"train": "chat.jsonl", "validation": "val.jsonl"},
        hyperparameters={"learning_rate_multiplier": 2.0, "gradient_accumulation_steps": 2}),
}
