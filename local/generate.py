"""Sample from a local job's base model and its tuned model, side by side."""
from __future__ import annotations

from pathlib import Path

from .merge import TrainedJob, load_tuned


def _complete(model, tok, prompt: str, max_new_tokens: int, system: str | None) -> str:
    import torch

    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def generate(job_dir: Path, prompt: str, *, max_new_tokens: int = 48, system: str | None = None
             ) -> dict[str, str]:
    """{"base": ..., "tuned": ...}: greedy completions of `prompt` under the chat template."""
    from .quiet import quiet_libraries

    quiet_libraries()
    import torch
    from transformers import AutoModelForCausalLM

    job = TrainedJob(Path(job_dir))
    torch.manual_seed(0)
    model, tok = load_tuned(job)
    model.eval()
    tuned = _complete(model, tok, prompt, max_new_tokens, system)
    if job.is_peft:
        with model.disable_adapter():
            base = _complete(model, tok, prompt, max_new_tokens, system)
    else:
        base_model = AutoModelForCausalLM.from_pretrained(job.base_path(), dtype=torch.float32).eval()
        base = _complete(base_model, tok, prompt, max_new_tokens, system)
    return {"base": base, "tuned": tuned}
