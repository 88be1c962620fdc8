"""The SFT recipe: one self-contained run of TRL's SFTTrainer (+ PEFT) for a JobSpec.

Data: any SFT format the dataset engine reads, rendered as conversational rows. Loss: on the
assistant tokens (end-of-turn token included) when the chat template marks them with
`{% generation %}`; otherwise on the final assistant turn only, through a prompt/completion split
(earlier assistant turns become context), and the run says so.
"""
from __future__ import annotations

from typing import Any

from .training import RunContext

MASK_FALLBACK_NOTE = (
    "the chat template has no {% generation %} markers, so TRL cannot build an assistant-token "
    "mask; each example is split into prompt (all turns before the last assistant turn) and "
    "completion (the last assistant turn) and the loss covers the completion only. Loss on every "
    "token would also train the model to write user turns.")


def to_prompt_completion(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        msgs = row["messages"]
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            continue
        out.append({"prompt": msgs[:last], "completion": [msgs[last]]})
    return out


class TokenCounter:
    """Wraps a data collator to count the real (non-padding) tokens this rank consumed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.tokens = 0

    def __call__(self, features):
        batch = self.inner(features)
        if "attention_mask" in batch:
            self.tokens += int(batch["attention_mask"].sum())
        elif "input_ids" in batch:
            self.tokens += int(batch["input_ids"].numel())
        return batch


def pack_length(tok, rows: list[dict], examples_per_row: int, max_length: int,
                sample: int = 2000) -> tuple[int, float, int]:
    """Row length for BFD packing so one packed row holds about `examples_per_row` examples.

    Packing fills rows of this many tokens; with one row per device per micro-step, a step then
    sees about as many examples as the requested batch (not max_length / mean examples, which
    would silently multiply the batch). Never shorter than the longest example (up to
    max_length), so packing truncates nothing that padding would keep.
    """
    lengths = []
    for row in rows[:sample]:
        msgs = row.get("messages") or (row.get("prompt", []) + row.get("completion", []))
        ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=False)
        lengths.append(min(len(ids), max_length))
    if not lengths:
        return max_length, 0.0, 0
    mean = sum(lengths) / len(lengths)
    longest = max(lengths)
    length = int(max(longest, round(examples_per_row * mean)))
    return min(length, examples_per_row * max_length), mean, longest


def estimate_params(config) -> tuple[int, int, int]:
    h = getattr(config, "hidden_size", 0) or 0
    layers = getattr(config, "num_hidden_layers", 0) or 0
    inter = getattr(config, "intermediate_size", 4 * h) or 4 * h
    vocab = getattr(config, "vocab_size", 0) or 0
    tied = getattr(config, "tie_word_embeddings", False)
    n = vocab * h * (1 if tied else 2) + layers * (4 * h * h + 3 * h * inter)
    return n, h, layers


def prepare(spec, ctx: RunContext, method: str):
    """Shared set-up: hardware, model path, tokenizer, rows, effective config."""
    from transformers import AutoConfig

    from .data import load_rows
    from .hardware import choose, detect
    from .models import resolve
    from .training import load_tokenizer, split_validation

    hw = detect(ctx.options.get("device"))
    resolved = resolve(spec.model_for("local"))
    try:
        config = AutoConfig.from_pretrained(resolved.path)
    except (OSError, ValueError) as exc:
        from ..errors import UnituneError

        raise UnituneError(f"cannot load model config from {resolved.path}: "
                           f"{str(exc).splitlines()[0][:300]}",
                           hint="point base_model at a valid model directory") from exc
    n, h, layers = estimate_params(config)
    eff = choose(spec, hw, n_params=n, hidden=h, layers=layers, world_size=ctx.world_size,
                 options=ctx.options)
    tok = load_tokenizer(resolved.path)
    rows, notes = load_rows(spec.data_path("train"), method)
    ctx.notes.extend(notes)
    val_rows: list[dict] = []
    if isinstance(spec.data.validation, float):
        rows, val_rows = split_validation(rows, spec.data.validation, eff.seed)
    elif spec.data.validation:
        val_rows, more = load_rows(spec.data_path("validation"), method)
        ctx.notes.extend(more)
    return hw, resolved, eff, tok, rows, val_rows


def announce(ctx: RunContext, hw, resolved, eff, extra: dict[str, Any]) -> None:
    if not ctx.is_main:
        return
    ctx.log(f"hardware: {hw.describe()}")
    ctx.log(f"model: {resolved.requested} ({resolved.source}: {resolved.path})")
    ctx.log("effective config:")
    for line in eff.lines():
        ctx.log(line)
    for key, value in extra.items():
        ctx.log(f"{key:>28}: {value}")
    for note in ctx.notes:
        ctx.log(f"note: {note}")
    ctx.files.update_status(effective_config={**eff.to_dict(), **extra}, notes=ctx.notes,
                            hardware=hw.describe())
    ctx.files.event("effective config", data={**eff.to_dict(), **extra, "notes": ctx.notes})


def run(spec, ctx: RunContext) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .adapters import peft_config
    from .training import (common_args, finish, load_model, make_callback, record_rank,
                           resume_point, supports_assistant_mask)

    hw, resolved, eff, tok, rows, val_rows = prepare(spec, ctx, "sft")
    mask = supports_assistant_mask(tok)
    if not mask:
        rows, val_rows = to_prompt_completion(rows), to_prompt_completion(val_rows)
        ctx.notes.append(MASK_FALLBACK_NOTE)
    loss_on = ("assistant tokens (incl. end-of-turn)" if mask else
               "last assistant turn (prompt/completion split)")

    extra: dict[str, Any] = {"loss_on": loss_on, "adapter": spec.adapter.type}
    args = common_args(spec, eff, ctx, has_eval=bool(val_rows))
    if eff.packing:
        length, mean, longest = pack_length(tok, rows, eff.per_device_batch_size, eff.max_length)
        args.update(max_length=length, per_device_train_batch_size=1)
        extra["packed_row"] = (f"1 row of up to {length} tokens per device per micro-step "
                               f"(~{eff.per_device_batch_size} examples; mean example "
                               f"{mean:.0f} tokens, longest {longest})")
    if spec.adapter.type == "qlora":
        extra["quantization"] = "8-bit" if spec.adapter.bits == 8 else "4-bit NF4 + double quant"
    announce(ctx, hw, resolved, eff, extra)
    model = load_model(spec, resolved.path, eff, hw, ctx)
    args.update(packing=eff.packing, packing_strategy="bfd", assistant_only_loss=mask)
    ckpt, tokens_offset = resume_point(ctx)
    callback = make_callback(ctx, tokens_offset)
    trainer = SFTTrainer(model=model, args=SFTConfig(**args),
                         train_dataset=Dataset.from_list(rows),
                         eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
                         processing_class=tok, peft_config=peft_config(spec),
                         callbacks=[callback])
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    trainer.train(resume_from_checkpoint=ckpt)
    result = finish(trainer, tok, ctx, callback)
    record_rank(ctx, trainer, counter.tokens)
    return result
