"""Sample from a local job's base model and its tuned model, side by side (greedy).

A thin wrapper over `unitune.local.inference` (the local caller of the one inference protocol),
kept for the demo and the Python API.
"""
from __future__ import annotations

from pathlib import Path


def generate(job_dir: Path, prompt: str, *, max_new_tokens: int = 48, system: str | None = None
             ) -> dict[str, str]:
    """{"base": ..., "tuned": ...}: greedy completions of `prompt` under the chat template."""
    from ..inference.types import GenParams
    from .inference import caller_for_dir

    msgs = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": prompt}]
    params = GenParams(max_tokens=max_new_tokens, temperature=0.0, seed=0)
    tuned = caller_for_dir(Path(job_dir)).generate(msgs, params)
    base = caller_for_dir(Path(job_dir), base=True).generate(msgs, params)
    return {"base": base.text, "tuned": tuned.text}
