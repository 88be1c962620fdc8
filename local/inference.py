"""Calling local models in this process: transformers + PEFT, greedy by default.

`for_job(record, base=…)` loads a finished local job once (the base in full precision with its
adapter attached; a full fine-tune is loaded as it is) and answers with the adapter on (tuned) or
off (`base=True`, PEFT's `disable_adapter()`; a full fine-tune's base is loaded beside it).
`for_model("local", "unitune/tiny-chat" | "./dir" | "hf/id")` loads any model `resolve` finds.
Loaded models are cached per process; calls on one model are serialised (`max_concurrency = 1`).

`perplexity(conversations)` is the assistant-masked perplexity: exp of the mean negative
log-likelihood of the assistant tokens only (the chat template's `{% generation %}` marks; a
template without them: the last assistant turn), for `unitune eval`.
"""
from __future__ import annotations

import contextlib
import math
import threading
import time
from pathlib import Path
from typing import Any

from ..inference.types import GenParams, Generation, Message, usage

_LOCK = threading.RLock()
_LOADED: dict[str, "_Loaded"] = {}


class _Loaded:
    def __init__(self, model: Any, tok: Any, is_peft: bool) -> None:
        self.model, self.tok, self.is_peft = model, tok, is_peft
        self.lock = threading.Lock()


def _load_job(job_dir: Path) -> _Loaded:
    from .merge import TrainedJob, load_tuned

    key = f"job:{Path(job_dir).resolve()}"
    with _LOCK:
        if key not in _LOADED:
            job = TrainedJob(Path(job_dir))
            model, tok = load_tuned(job)
            model.eval()
            _LOADED[key] = _Loaded(model, tok, job.is_peft)
        return _LOADED[key]


def _load_path(path: str) -> _Loaded:
    key = f"model:{path}"
    with _LOCK:
        if key not in _LOADED:
            from .quiet import quiet_libraries

            quiet_libraries()
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
            _LOADED[key] = _Loaded(model, tok, False)
        return _LOADED[key]


def forget() -> None:
    """Drop every loaded model (tests; a long session that is done with them)."""
    with _LOCK:
        _LOADED.clear()


class LocalCaller:
    """A model in this process. `adapter=False` calls a PEFT model with its adapter disabled."""

    max_concurrency = 1

    def __init__(self, loaded: _Loaded, model: str, *, adapter: bool = True,
                 label: str | None = None) -> None:
        self.backend = "local"
        self.loaded = loaded
        self.model = model
        self.adapter = adapter
        self.label = label or f"local:{model}"
        self.price = None
        self.tuned = adapter and loaded.is_peft

    def _context(self):
        if self.loaded.is_peft and not self.adapter:
            return self.loaded.model.disable_adapter()
        return contextlib.nullcontext()

    def _encode(self, messages: list[Message], generation_prompt: bool = True):
        tok = self.loaded.tok
        msgs = [{"role": m["role"], "content": str(m.get("content") or "")} for m in messages]
        return tok.apply_chat_template(msgs, add_generation_prompt=generation_prompt,
                                       return_tensors="pt", return_dict=True)

    def generate(self, messages: list[Message], params: GenParams) -> Generation:
        import torch

        tok, model = self.loaded.tok, self.loaded.model
        enc = self._encode(messages)
        kw: dict[str, Any] = {"max_new_tokens": params.max_tokens,
                              "eos_token_id": tok.eos_token_id,
                              "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None
                              else tok.eos_token_id}
        if params.temperature and params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature)
            if params.top_p is not None:
                kw["top_p"] = params.top_p
        else:
            kw["do_sample"] = False
        if params.stop:
            kw.update(stop_strings=list(params.stop), tokenizer=tok)
        started = time.monotonic()
        with self.loaded.lock, self._context(), torch.no_grad():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = model.generate(**enc, **kw)
        latency = time.monotonic() - started
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        stopped = bool(new) and new[-1] == tok.eos_token_id
        text = tok.decode(new, skip_special_tokens=True).strip()
        for s in params.stop:
            if s and s in text:
                text, stopped = text.split(s, 1)[0], True
        finish = "stop" if stopped or len(new) < params.max_tokens else "length"
        return Generation(text=text, finish_reason=finish,
                          usage=usage(enc["input_ids"].shape[1], len(new)), latency_s=latency,
                          raw={"token_ids": new}, model=self.model)

    def nll(self, conversations: list[list[Message]]) -> list[tuple[float, int]]:
        """Per conversation: (summed negative log-likelihood of its assistant tokens, their
        number)."""
        import torch

        tok, model = self.loaded.tok, self.loaded.model
        out: list[tuple[float, int]] = []
        with self.loaded.lock, self._context(), torch.no_grad():
            for msgs in conversations:
                ids, mask = _assistant_ids(tok, msgs)
                if not any(mask[1:]):
                    out.append((0.0, 0))
                    continue
                input_ids = torch.tensor([ids])
                logits = model(input_ids=input_ids).logits[0, :-1]
                logp = torch.log_softmax(logits.float(), dim=-1).gather(
                    1, input_ids[0, 1:, None])[:, 0]
                m = torch.tensor(mask[1:], dtype=torch.bool)
                out.append((-float(logp[m].sum()), int(m.sum())))
        return out

    def perplexity(self, conversations: list[list[Message]]) -> float | None:
        """Assistant-masked perplexity over `conversations` (None when no assistant token)."""
        rows = self.nll(conversations)
        count = sum(c for _, c in rows)
        return math.exp(sum(n for n, _ in rows) / count) if count else None


def _assistant_ids(tok: Any, messages: list[Message]) -> tuple[list[int], list[int]]:
    """(token ids, 1 where the token is an assistant token) for one conversation."""
    msgs = [{"role": m["role"], "content": str(m.get("content") or "")} for m in messages]
    try:
        enc = tok.apply_chat_template(msgs, return_dict=True, return_assistant_tokens_mask=True,
                                      tokenize=True)
        mask = list(enc.get("assistant_masks") or [])
        ids = list(enc["input_ids"])
        if any(mask) and len(mask) == len(ids):
            return ids, mask
    except Exception:  # noqa: BLE001 - a template without generation marks
        pass
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    ids = list(tok.apply_chat_template(msgs, tokenize=True))
    if last is None:
        return ids, [0] * len(ids)
    prompt = list(tok.apply_chat_template(msgs[:last], tokenize=True, add_generation_prompt=True))
    return ids, [0] * len(prompt) + [1] * (len(ids) - len(prompt))


def for_job(rec: Any, *, base: bool = False, options: dict[str, Any] | None = None
            ) -> LocalCaller:
    from .merge import resolve_job_dir

    job_dir = resolve_job_dir(rec.id) if not isinstance(rec, (str, Path)) else Path(rec)
    return caller_for_dir(job_dir, base=base, job_id=getattr(rec, "id", None))


def caller_for_dir(job_dir: Path, *, base: bool = False, job_id: str | None = None
                   ) -> LocalCaller:
    """The tuned (or base) model of the local job in `job_dir`."""
    from .merge import TrainedJob

    job = TrainedJob(Path(job_dir))
    name = job_id or Path(job_dir).name
    if base and not job.is_peft:  # a full fine-tune: the base is a model of its own
        return LocalCaller(_load_path(job.base_path()), job.base_model or "base",
                           label=f"{name} base ({job.base_model})")
    loaded = _load_job(Path(job_dir))
    return LocalCaller(loaded, job.base_model if base else str(job.adapter_dir),
                       adapter=not base,
                       label=f"{name} {'base' if base else 'tuned'}"
                             + (f" ({job.base_model})" if base else ""))


def for_model(backend: str, model: str, *, base_url: str | None = None,
              options: dict[str, Any] | None = None) -> LocalCaller:
    from .models import resolve

    return LocalCaller(_load_path(resolve(model).path), model)
