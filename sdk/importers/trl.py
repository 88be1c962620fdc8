"""A TRL config → unitune spec: an `SFTConfig` / `DPOConfig` dump (`config.to_json_string()`,
`to_dict()`, or the `args` a trainer logged) or a `trl sft --config` YAML (which adds the model,
dataset and PEFT arguments of `ModelConfig` / `ScriptArguments`).

A bare SFTConfig dump holds every TrainingArguments field (~135), most at their defaults. With
TRL installed, a field left at TRL's declared default and without a unitune equivalent is
counted as such instead of listed one by one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError
from .common import (INFRA_REASON, ConfigSource, fill_cloud_models, finish, is_empty,
                     map_trainer_batch_and_epochs, set_data, slug)
from .result import ImportResult

INFRA_PREFIXES = ("logging_", "log_", "hub_", "push_to_hub", "trackio_", "dataloader_",
                  "save_on_", "ddp_", "report_to", "eval_do_", "eval_use_", "fsdp", "debug")
INFRA_KEYS = {"output_dir", "overwrite_output_dir", "run_name", "project", "disable_tqdm",
              "resume_from_checkpoint", "save_strategy", "save_only_model", "do_train",
              "do_eval", "do_predict", "local_rank", "skip_memory_metrics",
              "include_num_input_tokens_seen", "accelerator_config", "parallelism_config",
              "enable_jit_checkpoint", "restore_callback_states_from_checkpoint",
              "dataset_num_proc", "hub_token", "torch_empty_cache_steps"}
REASONS = {
    "optim": "the local backend trains with transformers' default optimizer (AdamW); cloud "
             "vendors choose their own",
    "max_grad_norm": "the local backend keeps transformers' default gradient clipping (1.0)",
    "model_init_kwargs": "unitune loads the model itself (dtype and attention from "
                         "backend_options.local)",
    "trust_remote_code": "the local backend never runs code from a model repository",
    "dataset_text_field": "unitune trains on chat, instruction or preference examples, not a "
                          "raw text field",
    "chat_template_path": "the local backend formats chats with the base model's own template",
    "dataset_config": "pick the configuration when you export the dataset to JSONL",
    "dataset_test_split": "unitune takes validation data as a file or a fraction "
                          "(data.validation)",
    "eval_strategy": "unitune evaluates every backend_options.local.eval_steps when it has "
                     "validation data",
    "per_device_eval_batch_size": "evaluation uses the training micro-batch size in unitune",
    "use_cpu": "where to train is backend_options.local.device (auto picks a GPU when there is "
               "one; `cpu` forces the CPU)",
    "eos_token": "unitune keeps the tokenizer's own special tokens",
    "pad_token": "unitune keeps the tokenizer's own special tokens",
}


def _trl_defaults() -> dict[str, Any]:
    """Declared defaults of SFTConfig and DPOConfig fields ({} without TRL)."""
    import dataclasses

    try:
        from trl import DPOConfig, SFTConfig
    except Exception:  # noqa: BLE001 - TRL missing or broken: no defaults, list everything
        return {}
    out: dict[str, Any] = {}
    for cls in (SFTConfig, DPOConfig):
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out.setdefault(f.name, f.default)
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                try:
                    out.setdefault(f.name, f.default_factory())  # type: ignore[misc]
                except Exception:  # noqa: BLE001
                    pass
    return out


def import_trl(path: str | Path, *, out_dir: Path, name: str | None = None,
               data: str | None = None) -> ImportResult:
    src = ConfigSource(path, "trl")
    cfg, r, base_dir, used, take = src.cfg, src.result, src.base_dir, src.used, src.take

    known = ("learning_rate", "per_device_train_batch_size", "num_train_epochs", "max_length",
             "max_seq_length", "model_name_or_path", "output_dir")
    if not any(k in cfg for k in known):
        raise SpecError(f"{path}: no TRL training arguments found (learning_rate, "
                        "num_train_epochs, …)", file=str(path),
                        hint="save `SFTConfig(...).to_json_string()` or a `trl sft --config` YAML")
    label = take("run_name") or (Path(str(cfg["output_dir"])).name if cfg.get("output_dir")
                                 else Path(path).stem)
    r.set("name", slug(str(label)), None)
    r.set("backend", "local")
    model = take("model_name_or_path")
    if model:
        r.set("models.local", str(model), "model_name_or_path")
    else:
        r.data_steps["model"] = ("the dump does not name the model (it is passed to the trainer, not the "
                      "config): add `models: {local: <Hugging Face id>}` or use --base-model")

    method = "dpo" if "beta" in cfg or cfg.get("loss_type") in ("sigmoid", ["sigmoid"]) else "sft"
    if method == "dpo":
        r.set("method", "dpo", "beta" if "beta" in cfg else "loss_type")
        beta = take("beta")
        if beta is not None:
            r.set("hyperparameters.beta", float(beta), "beta")
        loss = take("loss_type")
        losses = loss if isinstance(loss, list) else [loss]
        if loss is not None and losses != ["sigmoid"]:
            raise SpecError(f"{path}: loss_type: {loss} — unitune's DPO uses the sigmoid loss",
                            file=str(path), field="loss_type", hint="use loss_type: sigmoid")
    else:
        loss = take("loss_type")
        if loss not in (None, "nll"):
            r.skip("loss_type", loss, "unitune's SFT uses the standard next-token loss (nll)")

    # -- adapter (ModelConfig's PEFT arguments, when present) ------------------------------------
    use_peft = take("use_peft")
    peft_keys = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")
    load4, load8 = bool(take("load_in_4bit")), bool(take("load_in_8bit"))
    if use_peft is None and not any(k in cfg for k in peft_keys):
        r.notes.append("the config does not say whether a PEFT adapter was used (a PeftConfig is "
                       "passed to the trainer separately): unitune's default LoRA is assumed; "
                       "set `adapter.type: full` for full fine-tuning")
    elif use_peft is False:
        r.set("adapter.type", "full", "use_peft")
        for key in peft_keys:
            value = take(key)
            if value is not None:
                r.skip(key, value, "use_peft is false (full fine-tuning)")
    if use_peft or (use_peft is None and any(k in cfg for k in peft_keys)):
        kind = "qlora" if (load4 or load8) else "lora"
        if take("use_dora") and kind == "lora":
            kind = "dora"
        elif take("use_rslora") and kind == "lora":
            kind = "rslora"
        r.set("adapter.type", kind, "use_peft")
        if kind == "qlora":
            r.set("adapter.bits", 8 if load8 and not load4 else 4,
                  "load_in_8bit" if load8 and not load4 else "load_in_4bit")
        for key, target, cast in (("lora_r", "adapter.r", int),
                                  ("lora_alpha", "adapter.alpha", int),
                                  ("lora_dropout", "adapter.dropout", float)):
            value = take(key)
            if value is not None:
                r.set(target, cast(value), key)
        modules = take("lora_target_modules")
        if modules:
            r.set("adapter.target_modules", modules if isinstance(modules, (list, str))
                  else str(modules), "lora_target_modules")

    # -- data ------------------------------------------------------------------------------------
    dataset = take("dataset_name")
    split = take("dataset_train_split")
    if dataset:
        set_data(r, "train", str(dataset), None, base_dir=base_dir, out_dir=out_dir,
                 source="dataset_name", hub_split=split)
    elif not data:
        r.set("data.train", "data/train.jsonl", None)
        r.data_steps["train"] = ("the config does not name the training data (the dataset is "
                                 "passed to the trainer): put it at data/train.jsonl or pass "
                                 "`--data FILE`")

    # -- hyperparameters -------------------------------------------------------------------------
    length = take("max_length")
    old_length = take("max_seq_length")
    if length is not None or old_length is not None:
        src = "max_length" if length is not None else "max_seq_length"
        r.set("hyperparameters.max_seq_length", int(length if length is not None else old_length),
              src)
    map_trainer_batch_and_epochs(r, take)
    steps = take("max_steps")
    if steps is not None and int(steps) > 0:
        r.set("hyperparameters.max_steps", int(steps), "max_steps")
    ratio = take("warmup_ratio")
    warm = take("warmup_steps")
    if ratio:
        r.set("hyperparameters.warmup_ratio", float(ratio), "warmup_ratio")
    elif warm:
        if isinstance(warm, float) and 0 < warm < 1:
            r.set("hyperparameters.warmup_ratio", warm, "warmup_steps",
                  note="transformers 5 reads warmup_steps < 1 as a ratio")
        else:
            r.skip("warmup_steps", warm, "unitune takes warmup as a ratio "
                   "(hyperparameters.warmup_ratio)")
    for key, target, cast in (("learning_rate", "hyperparameters.learning_rate", float),
                              ("weight_decay", "hyperparameters.weight_decay", float),
                              ("seed", "hyperparameters.seed", int)):
        value = take(key)
        if value is not None:
            r.set(target, cast(value), key)

    local = "backend_options.local."
    sched = take("lr_scheduler_type")
    if sched is not None:
        r.set(local + "lr_scheduler", str(sched), "lr_scheduler_type")
    bf16, fp16 = take("bf16"), take("fp16")
    if bf16:
        r.set(local + "precision", "bf16", "bf16")
    elif fp16:
        r.set(local + "precision", "fp16", "fp16")
    act = take("activation_checkpointing")
    gc = take("gradient_checkpointing")
    if isinstance(act, bool):
        r.set(local + "activation_checkpointing", act, "activation_checkpointing")
    elif isinstance(gc, bool):
        r.set(local + "activation_checkpointing", gc, "gradient_checkpointing")
    packing = take("packing")
    if isinstance(packing, bool) and method == "sft":
        r.set(local + "packing", packing, "packing")
    strategy = take("packing_strategy")
    if strategy not in (None, "bfd"):
        r.skip("packing_strategy", strategy, "the local backend packs with BFD")
    attn = take("attn_implementation")
    if attn:
        r.set(local + "attn_implementation", str(attn), "attn_implementation")
    for key, opt in (("logging_steps", "logging_steps"), ("save_steps", "save_steps"),
                     ("eval_steps", "eval_steps"), ("save_total_limit", "keep_checkpoints")):
        value = take(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            r.set(local + opt, value, key)
        elif isinstance(value, float) and value.is_integer() and value >= 1:
            r.set(local + opt, int(value), key)
        elif value is not None:
            r.skip(key, value, "unitune takes a whole number of steps here")
    aol = take("assistant_only_loss")
    if aol is True:
        r.skip("assistant_only_loss", True, "unitune computes the loss on assistant turns where "
               "the chat template marks them — the same intent", kind="equivalent")
    elif aol is False:
        r.skip("assistant_only_loss", False, "unitune computes the loss on assistant turns where "
               "the chat template marks them (TRL's assistant_only_loss: true)")

    defaults = _trl_defaults()
    for key, value in cfg.items():
        if key in used:
            continue
        if key in defaults and _same(defaults[key], value):
            r.skip(key, value, "TRL's default", kind="default")
        elif is_empty(value):
            r.empty.append(key)
        elif key in INFRA_KEYS or key.startswith(INFRA_PREFIXES):
            r.skip(key, value, INFRA_REASON, kind="infrastructure")
        else:
            r.skip(key, value, REASONS.get(key, "no unitune equivalent; the local backend "
                                                "leaves it at TRL/transformers' default"))
    r.account_for(cfg, used, {"gradient_checkpointing": "the older name of "
                              "activation_checkpointing (mapped)"})
    fill_cloud_models(r, method)
    finish(r, name=name, data=data, out_dir=out_dir)
    return r


def _same(default: Any, value: Any) -> bool:
    if hasattr(default, "value"):  # an Enum
        default = default.value
    if isinstance(default, float) or isinstance(value, float):
        try:
            return float(default) == float(value)
        except (TypeError, ValueError):
            return False
    return default == value
