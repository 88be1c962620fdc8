"""unitune spec → Axolotl or LLaMA-Factory config, where the mapping is lossless.

Every spec field is either written to the tool's config, not applicable (settings of other
backends: cloud models, `learning_rate_multiplier`, `suffix`, `metadata`), or lost (the tool
cannot express it: an adapter type it lacks, a data format it cannot read, a multi-process
strategy that needs its own config file). `export_config` refuses when anything would be lost
unless `lossy=True`; importing the written config back gives the same training settings (the
tests check the round trip on every fixture).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError

# What the local backend does when the spec says "auto" / leaves a field unset; the exported
# config has to spell it out.
LOCAL_AUTO_EPOCHS = 1
LOCAL_AUTO_BATCH = 8


@dataclass
class ExportResult:
    tool: str
    config: dict[str, Any]
    extra_files: dict[str, Any] = field(default_factory=dict)  # relative path → JSON content
    lost: list[tuple[str, Any, str]] = field(default_factory=list)  # field, value, why
    not_applicable: list[tuple[str, Any, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        return not self.lost

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "config": self.config, "lossless": self.lossless,
                "extra_files": sorted(self.extra_files),
                "lost": [{"field": f, "value": v, "reason": w} for f, v, w in self.lost],
                "not_applicable": [{"field": f, "value": v, "reason": w}
                                   for f, v, w in self.not_applicable],
                "notes": self.notes}


def _data_format(spec: Any) -> str | None:
    """The training file's format: the spec's, else detected from its first line."""
    from ..data.formats import canonical_format, detect_format

    if spec.data.format not in (None, "", "auto"):
        return canonical_format(spec.data.format)
    path = spec.data_path("train")
    if path is None or not path.is_file():
        return None
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            if line.strip():
                try:
                    return detect_format(json.loads(line))
                except ValueError:
                    return None
    return None


def _rel(spec: Any, which: str, out_dir: Path) -> str | None:
    path = spec.data_path(which)
    if path is None:
        return None
    try:
        return os.path.relpath(path.resolve(), out_dir.resolve())
    except ValueError:
        return str(path.resolve())


def _common(spec: Any, res: ExportResult) -> dict[str, Any]:
    """Tool-neutral values of the spec's training settings, recording what does not apply."""
    hp, ad = spec.hyperparameters, spec.adapter
    out: dict[str, Any] = {}
    model = spec.models.get("local") or spec.base_model
    if not model:
        raise SpecError("the spec names no local model (models.local or base_model)",
                        field="models.local", hint="add `models: {local: <Hugging Face id>}`")
    out["model"] = model
    for backend, m in spec.models.items():
        if backend != "local":
            res.not_applicable.append((f"models.{backend}", m, "another backend's model"))
    for backend, opts in spec.backend_options.items():
        if backend != "local" and opts:
            res.not_applicable.append((f"backend_options.{backend}", "…",
                                       "another backend's options"))
    if hp.learning_rate_multiplier is not None:
        res.not_applicable.append(("hyperparameters.learning_rate_multiplier",
                                   hp.learning_rate_multiplier, "cloud vendors only"))
    if spec.suffix:
        res.not_applicable.append(("suffix", spec.suffix, "a vendor model-name suffix"))
    if spec.metadata:
        res.not_applicable.append(("metadata", spec.metadata, "vendor job labels"))
    if ad.type in ("prefix", "p_tuning", "prompt_tuning", "ia3"):
        res.lost.append(("adapter.type", ad.type, f"{res.tool} has no {ad.type} adapter in its "
                         "config"))
    out["epochs"] = hp.epochs if isinstance(hp.epochs, int) else LOCAL_AUTO_EPOCHS
    if hp.epochs == "auto":
        res.notes.append(f"epochs: auto written as {LOCAL_AUTO_EPOCHS} (what the local "
                         "backend trains)")
    opts = spec.backend_options.get("local", {})
    gas = hp.gradient_accumulation_steps
    micro = opts.get("per_device_batch_size")
    batch = hp.batch_size if isinstance(hp.batch_size, int) else None
    if batch is None:
        batch = LOCAL_AUTO_BATCH
        res.notes.append(f"batch_size: auto written as {LOCAL_AUTO_BATCH} examples per step "
                         "(what the local backend trains)")
    if micro is None:
        micro = batch // gas if gas and batch % gas == 0 else batch if not gas else None
    if gas is None:
        gas = batch // micro if micro and batch % micro == 0 else None
    if not micro or not gas or micro * gas != batch:
        res.lost.append(("hyperparameters.batch_size", hp.batch_size,
                         f"cannot be written as micro-batch × accumulation (micro {micro}, "
                         f"accumulation {gas})"))
        micro, gas = micro or batch, gas or 1
    out["micro"], out["gas"] = int(micro), int(gas)
    for key in ("device", "gpus", "launcher", "max_length", "micro_tokens",
                "pad_to_multiple_of"):
        if key in opts:
            res.lost.append((f"backend_options.local.{key}", opts[key],
                             f"no {res.tool} config equivalent (launch-time or unitune-only)"))
    if opts.get("strategy") not in (None, "ddp"):
        res.lost.append(("backend_options.local.strategy", opts["strategy"],
                         f"{res.tool} needs its own {opts['strategy']} config file"))
    fmt = _data_format(spec)
    out["format"] = fmt
    return out


def to_axolotl(spec: Any, out_dir: Path) -> ExportResult:
    res = ExportResult("axolotl", {})
    c = _common(spec, res)
    hp, ad = spec.hyperparameters, spec.adapter
    cfg: dict[str, Any] = {"base_model": c["model"]}
    if spec.method == "dpo":
        cfg["rl"] = "dpo"
        if hp.beta is not None:
            cfg["rl_beta"] = hp.beta
    if ad.type == "qlora":
        cfg["adapter"] = "qlora" if ad.bits == 4 else "lora"
        cfg["load_in_4bit" if ad.bits == 4 else "load_in_8bit"] = True
    elif ad.type in ("lora", "dora", "rslora"):
        cfg["adapter"] = "lora"
        if ad.type == "dora":
            cfg["peft_use_dora"] = True
        if ad.type == "rslora":
            cfg["peft_use_rslora"] = True
    if ad.type in ("lora", "qlora", "dora", "rslora"):
        cfg.update(lora_r=ad.r, lora_alpha=ad.effective_alpha, lora_dropout=ad.dropout)
        tm = ad.target_modules
        if tm in (None, "all-linear"):
            cfg["lora_target_linear"] = True
        elif isinstance(tm, list):
            cfg["lora_target_modules"] = list(tm)
        else:
            res.lost.append(("adapter.target_modules", tm, "Axolotl takes a list of module "
                             "names or lora_target_linear"))
    types = {"alpaca": "alpaca", "sharegpt": "sharegpt", "messages": "chat_template"}
    ds: dict[str, Any] = {"path": _rel(spec, "train", out_dir) or spec.data.train}
    if spec.method == "sft":
        if c["format"] in types:
            ds["type"] = types[c["format"]]
            if c["format"] == "messages":
                ds["field_messages"] = "messages"
        else:
            res.lost.append(("data.format", c["format"] or "unknown",
                             "Axolotl reads alpaca, sharegpt or chat (messages) files; "
                             "`unitune convert FILE --to messages` first"))
    else:
        res.lost.append(("data.train", spec.data.train, "Axolotl's DPO datasets need an "
                         "Axolotl prompt strategy (`type`) unitune does not map"))
    ds["ds_type"] = "json"
    cfg["datasets"] = [ds]
    val = spec.data.validation
    if isinstance(val, float):
        cfg["val_set_size"] = val
    elif val is not None:
        cfg["test_datasets"] = [{"path": _rel(spec, "validation", out_dir), "ds_type": "json",
                                 **({"type": ds["type"]} if "type" in ds else {}),
                                 "split": "train"}]
    cfg["output_dir"] = f"./outputs/{spec.name}"
    if hp.max_seq_length is not None:
        cfg["sequence_len"] = hp.max_seq_length
    cfg.update(micro_batch_size=c["micro"], gradient_accumulation_steps=c["gas"],
               num_epochs=c["epochs"])
    for key, value in (("max_steps", hp.max_steps), ("learning_rate", hp.learning_rate),
                       ("warmup_ratio", hp.warmup_ratio), ("weight_decay", hp.weight_decay),
                       ("seed", hp.seed)):
        if value is not None:
            cfg[key] = value
    opts = spec.backend_options.get("local", {})
    prec = opts.get("precision")
    if prec in ("bf16", "auto"):
        cfg["bf16"] = True if prec == "bf16" else "auto"
    elif prec == "fp16":
        cfg["fp16"] = True
    for opt, key in (("lr_scheduler", "lr_scheduler"), ("packing", "sample_packing"),
                     ("activation_checkpointing", "gradient_checkpointing"),
                     ("attn_implementation", "attn_implementation"),
                     ("logging_steps", "logging_steps"), ("save_steps", "save_steps"),
                     ("eval_steps", "eval_steps"), ("keep_checkpoints", "save_total_limit")):
        if opt in opts:
            cfg[key] = opts[opt]
    if "per_device_batch_size" in opts:
        pass  # written as micro_batch_size
    res.config = cfg
    return res


def to_llama_factory(spec: Any, out_dir: Path) -> ExportResult:
    res = ExportResult("llama-factory", {})
    c = _common(spec, res)
    hp, ad = spec.hyperparameters, spec.adapter
    cfg: dict[str, Any] = {"model_name_or_path": c["model"], "stage": spec.method,
                           "do_train": True}
    if ad.type == "full":
        cfg["finetuning_type"] = "full"
    elif ad.type in ("lora", "qlora", "dora", "rslora"):
        cfg["finetuning_type"] = "lora"
        if ad.type == "qlora":
            cfg["quantization_bit"] = ad.bits
            cfg["quantization_method"] = "bnb"
        if ad.type == "dora":
            cfg["use_dora"] = True
        if ad.type == "rslora":
            cfg["use_rslora"] = True
        cfg.update(lora_rank=ad.r, lora_alpha=ad.effective_alpha, lora_dropout=ad.dropout)
        tm = ad.target_modules
        cfg["lora_target"] = "all" if tm in (None, "all-linear") else \
            ",".join(tm) if isinstance(tm, list) else str(tm)
    if spec.method == "dpo":
        cfg["pref_loss"] = "sigmoid"
        if hp.beta is not None:
            cfg["pref_beta"] = hp.beta
    # Data: LLaMA-Factory names datasets in dataset_info.json; write an entry for each file.
    info: dict[str, Any] = {}
    name = f"unitune_{spec.name}".replace("-", "_")
    entry = _lf_entry(spec, "train", c["format"], out_dir, res)
    if entry is not None:
        info[name] = entry
        cfg["dataset"] = name
    val = spec.data.validation
    if isinstance(val, float):
        cfg["val_size"] = val
    elif val is not None:
        ventry = _lf_entry(spec, "validation", c["format"], out_dir, res)
        if ventry is not None:
            info[name + "_eval"] = ventry
            cfg["eval_dataset"] = name + "_eval"
    cfg["dataset_dir"] = "."
    res.extra_files["dataset_info.json"] = info
    res.notes.append("dataset_info.json is written beside the config (dataset_dir: .); run "
                     "`llamafactory-cli train` from that folder")
    if hp.max_seq_length is not None:
        cfg["cutoff_len"] = hp.max_seq_length
    cfg["output_dir"] = f"saves/{spec.name}"
    cfg.update(per_device_train_batch_size=c["micro"], gradient_accumulation_steps=c["gas"],
               num_train_epochs=float(c["epochs"]))
    for key, value in (("max_steps", hp.max_steps), ("learning_rate", hp.learning_rate),
                       ("warmup_ratio", hp.warmup_ratio), ("weight_decay", hp.weight_decay),
                       ("seed", hp.seed)):
        if value is not None:
            cfg[key] = value
    opts = spec.backend_options.get("local", {})
    prec = opts.get("precision")
    if prec == "bf16":
        cfg["bf16"] = True
    elif prec == "fp16":
        cfg["fp16"] = True
    elif prec == "auto":
        res.lost.append(("backend_options.local.precision", "auto", "LLaMA-Factory has no "
                         "automatic precision switch; set precision bf16 or fp16 in the spec"))
    attn = opts.get("attn_implementation")
    if attn:
        flash = {"flash_attention_2": "fa2", "sdpa": "sdpa", "eager": "disabled"}.get(attn)
        if flash:
            cfg["flash_attn"] = flash
        else:
            res.lost.append(("backend_options.local.attn_implementation", attn,
                             "LLaMA-Factory's flash_attn takes fa2, sdpa, disabled or auto"))
    if "activation_checkpointing" in opts:
        cfg["disable_gradient_checkpointing"] = not opts["activation_checkpointing"]
    for opt, key in (("lr_scheduler", "lr_scheduler_type"), ("packing", "packing"),
                     ("logging_steps", "logging_steps"), ("save_steps", "save_steps"),
                     ("eval_steps", "eval_steps"), ("keep_checkpoints", "save_total_limit")):
        if opt in opts:
            cfg[key] = opts[opt]
    res.config = cfg
    return res


# LLaMA-Factory's description of OpenAI-style chat files (its docs' "openai" example).
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
               "assistant_tag": "assistant", "system_tag": "system"}


def _lf_entry(spec: Any, which: str, fmt: str | None, out_dir: Path,
              res: ExportResult) -> dict[str, Any] | None:
    rel = _rel(spec, which, out_dir)
    if spec.method == "dpo":
        res.lost.append((f"data.{which}", fmt or "unknown", "LLaMA-Factory's preference "
                         "datasets need a `ranking` column mapping unitune does not write"))
        return None
    if fmt == "alpaca":
        return {"file_name": rel}
    if fmt == "sharegpt":
        return {"file_name": rel, "formatting": "sharegpt"}
    if fmt == "messages":
        return {"file_name": rel, "formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": dict(OPENAI_TAGS)}
    res.lost.append((f"data.{which}", fmt or "unknown", "LLaMA-Factory reads alpaca or "
                     "sharegpt/OpenAI chat files; `unitune convert FILE --to messages` first"))
    return None


def export_config(spec: Any, tool: str, out_dir: Path) -> ExportResult:
    tool = tool.strip().lower().replace("_", "-")
    if tool == "axolotl":
        return to_axolotl(spec, out_dir)
    if tool in ("llama-factory", "llamafactory"):
        return to_llama_factory(spec, out_dir)
    raise SpecError(f"cannot export to {tool!r}", hint="export-config writes axolotl or "
                    "llama-factory configs")
