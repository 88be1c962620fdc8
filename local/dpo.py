"""The DPO recipe: one self-contained run of TRL's DPOTrainer (+ PEFT) on preference pairs.

With an adapter, the reference model is the base with the adapter disabled (no second copy in
memory); with `full`, TRL keeps a frozen copy as the reference.
"""
from __future__ import annotations

from typing import Any

from .training import RunContext


def run(spec, ctx: RunContext) -> dict[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from .adapters import peft_config
    from .sft import TokenCounter, announce, prepare
    from .training import common_args, finish, load_model, make_callback, record_rank, resume_point

    hw, resolved, eff, tok, rows, val_rows = prepare(spec, ctx, "dpo")
    beta = spec.hyperparameters.beta or 0.1
    announce(ctx, hw, resolved, eff, {"beta": beta, "adapter": spec.adapter.type,
                                      "loss_on": "chosen/rejected completions (sigmoid DPO loss)"})
    model = load_model(spec, resolved.path, eff, hw, ctx)
    args = common_args(spec, eff, ctx, has_eval=bool(val_rows))
    args.update(beta=beta)
    ckpt, tokens_offset = resume_point(ctx)
    callback = make_callback(ctx, tokens_offset)
    trainer = DPOTrainer(model=model, args=DPOConfig(**args), train_dataset=Dataset.from_list(rows),
                         eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
                         processing_class=tok, peft_config=peft_config(spec), callbacks=[callback])
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    callback.counter = counter
    trainer.train(resume_from_checkpoint=ckpt)
    result = finish(trainer, tok, ctx, callback)
    record_rank(ctx, trainer, counter, callback)
    return result
