"""LLaMA-Factory YAML (`llamafactory-cli train CONFIG`) → unitune spec.

LLaMA-Factory names datasets, not files: `dataset: identity,alpaca_en_demo` refers to entries of
`<dataset_dir>/dataset_info.json` (default `data/`, relative to where the CLI runs). The importer
looks for that file beside the config and in its parent folders; when found, the first dataset's
file (or Hub id) and formatting are used, otherwise the step to export it is listed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .common import (INFRA_REASON, ConfigSource, fill_cloud_models, finish, is_empty,
                     map_trainer_batch_and_epochs, set_data, slug)
from .result import ImportResult

INFRA_KEYS = {"output_dir", "overwrite_output_dir", "overwrite_cache", "preprocessing_num_workers",
              "dataloader_num_workers", "plot_loss", "save_only_model", "report_to",
              "resume_from_checkpoint", "logging_dir", "run_name", "push_to_hub", "hub_model_id",
              "tokenized_path", "cache_dir", "ray_run_name", "ray_storage_path",
              "ray_num_workers", "resources_per_worker", "placement_strategy", "save_strategy",
              "include_num_input_tokens_seen", "use_swanlab", "swanlab_project"}
REASONS = {
    "template": "the local backend formats chats with the base model's own chat template; "
                "cloud vendors apply theirs",
    "trust_remote_code": "the local backend never runs code from a model repository",
    "adapter_name_or_path": "unitune starts a new adapter (it does not continue from an "
                            "existing one)",
    "max_samples": "unitune trains on every example of the file; sample it down first "
                   "(`unitune split`)",
    "ddp_timeout": "launcher timeout; unitune uses torchrun's default",
    "additional_target": "unitune trains only the adapter's layers",
    "per_device_eval_batch_size": "evaluation uses the training micro-batch size in unitune",
    "eval_strategy": "unitune evaluates every backend_options.local.eval_steps when it has "
                     "validation data",
    "optim": "the local backend trains with transformers' default optimizer (AdamW); cloud "
             "vendors choose their own",
    "max_grad_norm": "the local backend keeps transformers' default gradient clipping (1.0)",
    "warmup_steps": "unitune takes warmup as a ratio (hyperparameters.warmup_ratio)",
    "enable_thinking": "a template switch; unitune uses the model's chat template as it is",
    "quantization_method": "unitune's qlora quantizes with bitsandbytes",
    "image_max_pixels": "no image preprocessing options in unitune",
    "video_max_pixels": "no video preprocessing options in unitune",
    "freeze_vision_tower": "unitune trains text models",
}
FORMATTINGS = {"alpaca": "alpaca", "sharegpt": "sharegpt", "openai": "messages"}


def import_llama_factory(path: str | Path, *, out_dir: Path, name: str | None = None,
                         data: str | None = None) -> ImportResult:
    src = ConfigSource(path, "llama-factory")
    cfg, r, base_dir, used, take = src.cfg, src.result, src.base_dir, src.used, src.take

    model = take("model_name_or_path")
    if not model:
        raise SpecError(f"{path}: no `model_name_or_path`", file=str(path),
                        hint="is this a LLaMA-Factory training config?")
    r.set("name", slug(Path(path).stem), None)
    r.set("backend", "local")
    r.set("models.local", str(model), "model_name_or_path")

    stage = str(take("stage") or "sft").lower()
    if stage not in ("sft", "dpo"):
        raise SpecError(f"{path}: stage: {stage} has no unitune equivalent (unitune trains sft "
                        "and dpo)", file=str(path), field="stage",
                        hint="import an SFT or DPO recipe")
    method = stage
    if stage == "sft" and "stage" in cfg:
        r.set("method", "sft", "stage")
    if stage == "dpo":
        r.set("method", "dpo", "stage")
        loss = take("pref_loss")
        if loss not in (None, "sigmoid"):
            raise SpecError(f"{path}: pref_loss: {loss} — unitune's DPO uses the sigmoid loss",
                            file=str(path), field="pref_loss", hint="use pref_loss: sigmoid")
        beta = take("pref_beta")
        if beta is not None:
            r.set("hyperparameters.beta", float(beta), "pref_beta")
    do_train = take("do_train")
    if do_train is False:
        raise SpecError(f"{path}: do_train: false — not a training config", file=str(path),
                        field="do_train", hint="import the config that trains")

    # -- adapter ---------------------------------------------------------------------------------
    ftype = str(take("finetuning_type") or "lora").lower()
    qbits = take("quantization_bit")
    if ftype == "full":
        r.set("adapter.type", "full", "finetuning_type")
        if qbits:
            raise SpecError(f"{path}: quantization_bit with finetuning_type: full",
                            file=str(path), field="quantization_bit",
                            hint="a quantized base needs finetuning_type: lora")
    elif ftype == "lora":
        kind, note = "lora", None
        if qbits:
            kind, note = "qlora", f"LoRA on a {qbits}-bit base is unitune's qlora"
            if int(qbits) not in (4, 8):
                raise SpecError(f"{path}: quantization_bit: {qbits} — unitune's qlora "
                                "quantizes to 4 or 8 bits", file=str(path),
                                field="quantization_bit", hint="use 4 or 8")
        if take("use_dora"):
            if kind == "qlora":
                r.skip("use_dora", True, "unitune's qlora is plain LoRA on the quantized base")
            else:
                kind, note = "dora", "use_dora"
        if take("use_rslora"):
            if kind == "lora":
                kind, note = "rslora", "use_rslora"
            else:
                r.skip("use_rslora", True, f"unitune's {kind} has no rsLoRA scaling")
        r.set("adapter.type", kind, "finetuning_type", note=note)
        if kind == "qlora":
            r.set("adapter.bits", int(qbits), "quantization_bit")
        for key, target, cast in (("lora_rank", "adapter.r", int),
                                  ("lora_alpha", "adapter.alpha", int),
                                  ("lora_dropout", "adapter.dropout", float)):
            value = take(key)
            if value is not None:
                r.set(target, cast(value), key)
        target_modules = take("lora_target")
        if target_modules is not None:
            text = str(target_modules)
            value: Any = "all-linear" if text.strip() == "all" else \
                [m.strip() for m in text.split(",") if m.strip()]
            r.set("adapter.target_modules", value, "lora_target")
    else:
        raise SpecError(f"{path}: finetuning_type: {ftype} has no unitune equivalent",
                        file=str(path), field="finetuning_type",
                        hint="unitune adapters: lora, qlora, dora, rslora, full, prefix, "
                             "p_tuning, prompt_tuning, ia3")

    # -- data ------------------------------------------------------------------------------------
    names = _names(take("dataset"))
    if not names:
        raise SpecError(f"{path}: no `dataset`", file=str(path), field="dataset",
                        hint="a LLaMA-Factory training config names its dataset(s)")
    ddir = str(take("dataset_dir") or "data")
    info, info_dir = _dataset_info(base_dir, ddir)
    _dataset(r, names[0], "train", "dataset", info, info_dir, base_dir, out_dir, method)
    for extra in names[1:]:
        r.skip("dataset", extra, "unitune trains on one file: concatenate the datasets into one "
               "JSONL", kind="data")
    evals = _names(take("eval_dataset"))
    val = take("val_size")
    if evals:
        _dataset(r, evals[0], "validation", "eval_dataset", info, info_dir, base_dir, out_dir,
                 method)
        if val:
            r.skip("val_size", val, "eval_dataset already gives the validation set")
    elif val:
        frac = float(val)
        if 0 < frac <= 0.5:
            r.set("data.validation", frac, "val_size")
        else:
            r.skip("val_size", val, "unitune splits off a fraction in (0, 0.5]")

    # -- hyperparameters -------------------------------------------------------------------------
    cutoff = take("cutoff_len")
    if cutoff is not None:
        r.set("hyperparameters.max_seq_length", int(cutoff), "cutoff_len")
    map_trainer_batch_and_epochs(r, take)
    for key, target, cast in (("max_steps", "hyperparameters.max_steps", int),
                              ("learning_rate", "hyperparameters.learning_rate", float),
                              ("warmup_ratio", "hyperparameters.warmup_ratio", float),
                              ("weight_decay", "hyperparameters.weight_decay", float),
                              ("seed", "hyperparameters.seed", int)):
        value = take(key)
        if value is not None and not (key == "max_steps" and int(value) < 1):
            r.set(target, cast(value), key)

    local = "backend_options.local."
    sched = take("lr_scheduler_type")
    if sched is not None:
        r.set(local + "lr_scheduler", str(sched), "lr_scheduler_type")
    if take("bf16"):
        r.set(local + "precision", "bf16", "bf16")
    elif take("fp16"):
        r.set(local + "precision", "fp16", "fp16")
    attn = take("flash_attn")
    if attn is not None:
        mapped = {"fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager"}.get(str(attn))
        if mapped:
            r.set(local + "attn_implementation", mapped, "flash_attn")
        elif str(attn) != "auto":
            r.skip("flash_attn", attn, "the local backend takes sdpa, flash_attention_2 or eager")
    packing = take("packing")
    if isinstance(packing, bool):
        r.set(local + "packing", packing, "packing")
    no_gc = take("disable_gradient_checkpointing")
    if isinstance(no_gc, bool):
        r.set(local + "activation_checkpointing", not no_gc, "disable_gradient_checkpointing")
    for key, opt in (("logging_steps", "logging_steps"), ("save_steps", "save_steps"),
                     ("eval_steps", "eval_steps"), ("save_total_limit", "keep_checkpoints")):
        value = take(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            r.set(local + opt, value, key)
        elif value is not None:
            r.skip(key, value, "unitune takes a whole number of steps here")
    if take("deepspeed"):
        r.set(local + "strategy", "deepspeed", "deepspeed",
              note="unitune's DeepSpeed strategy with its own settings; the JSON is not read")

    for key, value in cfg.items():
        if key in used:
            continue
        if is_empty(value):
            r.empty.append(key)
        elif key in INFRA_KEYS:
            r.skip(key, value, INFRA_REASON, kind="infrastructure")
        else:
            r.skip(key, value, REASONS.get(key, "no unitune equivalent; the local backend "
                                                "leaves it at TRL/transformers' default"))
    r.account_for(cfg, used)
    fill_cloud_models(r, method)
    finish(r, name=name, data=data, out_dir=out_dir)
    return r


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _dataset_info(base_dir: Path, ddir: str) -> tuple[dict[str, Any] | None, Path | None]:
    """dataset_info.json of `ddir`, looked up from the config's folder and up to 3 parents
    (LLaMA-Factory resolves it from the directory the CLI runs in, usually the repo root)."""
    rel = Path(ddir).expanduser()
    folders = [rel] if rel.is_absolute() else [p / rel for p in (base_dir, *list(base_dir.parents)[:3])]
    for folder in folders:
        f = folder / "dataset_info.json"
        if f.is_file():
            try:
                info = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(info, dict):
                return info, folder
    return None, None


def _openai_style(entry: dict[str, Any]) -> bool:
    """A sharegpt entry describing OpenAI chat lines (`messages` of role/content)."""
    from .export import OPENAI_TAGS

    tags = entry.get("tags") or {}
    return (entry.get("formatting") == "sharegpt"
            and (entry.get("columns") or {}) == {"messages": "messages"}
            and all(tags.get(k) == v for k, v in OPENAI_TAGS.items() if k in tags)
            and tags.get("role_tag") == "role")


def _dataset(r: ImportResult, ds_name: str, which: str, source: str, info: dict | None,
             info_dir: Path | None, base_dir: Path, out_dir: Path, method: str) -> None:
    entry = (info or {}).get(ds_name)
    if not isinstance(entry, dict):
        dest = f"data/{slug(ds_name)}{'' if which == 'train' else '-' + which}.jsonl"
        r.set(f"data.{which}", dest, source, note=f"dataset {ds_name!r}")
        where = f"{info_dir}/dataset_info.json" if info_dir else \
            "dataset_info.json (not found beside the config or in its parent folders)"
        r.data_steps[which] = (f"{ds_name!r} is a name in LLaMA-Factory's {where}; export that "
                               f"dataset as JSONL to {dest} (relative to the spec's folder), or "
                               f"pass `--data FILE`")
        return
    formatting = str(entry.get("formatting", "alpaca"))
    fmt = FORMATTINGS.get(formatting) if method == "sft" else None
    if _openai_style(entry):
        fmt = "messages" if method == "sft" else None
    elif entry.get("columns") or entry.get("tags"):
        r.skip(f"dataset_info[{ds_name}].columns", entry.get("columns") or entry.get("tags"),
               "column/tag renames: unitune reads the standard keys of each format; rename them "
               "when you export", kind="data")
    ref = entry.get("file_name") or entry.get("hf_hub_url") or entry.get("ms_hub_url")
    if entry.get("file_name"):
        ref = str((info_dir or base_dir) / entry["file_name"])
    if not ref:
        r.skip(f"dataset_info[{ds_name}]", entry, "no file_name or hf_hub_url", kind="data")
        ref = ds_name
    set_data(r, which, ref, fmt, base_dir=base_dir, out_dir=out_dir, source=source,
             hub_split=entry.get("split"))
    if fmt and which == "train":
        r.set("data.format", fmt, f"dataset_info[{ds_name}].formatting")
