"""The memory plan: a model's shape (from config.json alone), the peak memory a training run
will need, and the fastest micro-batch and activation checkpointing that fit.

`predict_memory` is a pure function of the model's shape, the adapter, precision, micro-batch,
sequence length, optimizer and checkpointing; `plan_memory` uses it to pick the fastest
micro-batch and activation checkpointing (none, every n-th layer, every layer, offloaded to host
memory) that fits the memory this machine has. Nothing here imports torch.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .hardware import Hardware

GB = 1e9


# -- the model's shape -----------------------------------------------------------------------------

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """What the memory plan needs to know about a decoder-only transformer."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool = False
    attention_bias: bool = False
    model_type: str = ""

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one decoder layer."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def n_params(self) -> int:
        bias = (self.q_dim + 2 * self.kv_dim) if self.attention_bias else 0
        per_layer = self.layer_linear_params() + 2 * self.hidden + bias
        return self.embedding_params() + self.layers * per_layer + self.hidden

    def lora_params(self, r: int, targets: Any = None) -> int:
        """LoRA parameters (A and B) over every layer for `target_modules` (None: all-linear)."""
        shapes = self.linear_shapes()
        names = [n for n in ([targets] if isinstance(targets, str) else (targets or []))
                 if n in shapes] if targets not in (None, "all-linear") else list(shapes)
        names = names or list(shapes)  # unknown names: count as all-linear (an upper bound)
        return self.layers * sum(r * sum(shapes[n]) for n in names)


def shape_from_config(config: Any) -> ModelShape | None:
    """A ModelShape from a transformers config object or a config.json dict (None if the config
    lacks the fields of a decoder-only transformer)."""
    get = (lambda k, d=None: config.get(k, d)) if isinstance(config, dict) else \
        (lambda k, d=None: getattr(config, k, d))
    text = get("text_config")
    if text is not None and not get("hidden_size"):
        return shape_from_config(text)
    h, layers = get("hidden_size"), get("num_hidden_layers")
    heads, vocab = get("num_attention_heads"), get("vocab_size")
    if not (h and layers and heads and vocab):
        return None
    return ModelShape(hidden=int(h), layers=int(layers),
                      intermediate=int(get("intermediate_size") or 4 * h), vocab=int(vocab),
                      heads=int(heads), kv_heads=int(get("num_key_value_heads") or heads),
                      head_dim=int(get("head_dim") or h // heads),
                      tied=bool(get("tie_word_embeddings", False)),
                      attention_bias=bool(get("attention_bias", False)
                                          or get("model_type") == "qwen2"),
                      model_type=str(get("model_type") or ""))


def rough_shape(n_params: int, hidden: int, layers: int) -> ModelShape:
    """A Llama-like shape with the given size (when only the parameter count is known)."""
    inter = int(8 * hidden / 3)
    per_layer = 4 * hidden * hidden + 3 * hidden * inter
    vocab = max(1, (n_params - layers * per_layer) // max(hidden, 1))
    heads = max(1, hidden // 128)
    return ModelShape(hidden=hidden, layers=layers, intermediate=inter, vocab=vocab, heads=heads,
                      kv_heads=heads, head_dim=hidden // heads, tied=True)


def read_model_shape(model: str) -> ModelShape | None:
    """The shape of a model directory, `unitune/tiny-chat` or a hub id in the local cache, from
    its config.json alone (no transformers import); None when it cannot be read."""
    from .tiny import TINY_ID, tiny_config_kwargs

    if model == TINY_ID:
        return shape_from_config(dict(tiny_config_kwargs(512), model_type="llama"))
    candidates = [Path(model).expanduser() / "config.json"]
    if not model.startswith(("/", ".", "~")) and model.count("/") <= 1:
        from .preflight import hub_cache

        snaps = hub_cache() / ("models--" + model.replace("/", "--")) / "snapshots"
        if snaps.is_dir():
            candidates += sorted(snaps.glob("*/config.json"))
    for path in candidates:
        try:
            return shape_from_config(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return None


# -- the memory prediction -------------------------------------------------------------------------

# Bytes autograd keeps for backward, per token and decoder layer (Llama/Qwen2-style layers, TRL's
# fused LM head, SDPA without a mask), as coefficients of (hidden, intermediate, kv_dim, lora_r,
# heads, 1), and the bytes per parameter of the autocast copies each layer keeps (of its LoRA
# weights for adapters, of all its weights for full fine-tuning). Measured on CPU with
# torch.autograd.graph.saved_tensors_hooks (torch 2.13, transformers 5.25, peft 0.21, TRL 1.16;
# 9 shapes x 2 sequence lengths, exact to the byte); tests/local/test_speed_memory.py measures
# again on shapes the fit never saw. Keys: (adapter or full, element bytes of the compute dtype).
ACTIVATION_BYTES: dict[tuple[str, int], tuple[tuple[int, ...], int]] = {
    ("adapter", 2): ((48, 12, 4, 14, 4, 8), 2),
    ("adapter", 4): ((64, 20, 8, 28, 4, 8), 0),
    ("full", 2): ((30, 8, 4, 0, 4, 8), 2),
    ("full", 4): ((32, 16, 8, 0, 4, 8), 0),
}
# Bytes per token outside the decoder layers (embedding output, final norm, the LM head's input;
# the first layer keeps less because its input needs no gradient): (per hidden unit, constant),
# without / with activation checkpointing. Measured as above.
OUTSIDE_BYTES = {("adapter", 2): ((-10, 64), (6, 17)), ("adapter", 4): ((-7, 68), (12, 25)),
                 ("full", 2): ((13, 80), (12, 25)), ("full", 4): ((13, 80), (12, 25))}
# TRL's fused LM head projects 4096 tokens x 32768 vocabulary entries per tile.
LM_HEAD_TILE = (4096, 32768)
CPU_RUNTIME_BYTES = int(1.0 * GB)  # python + torch + transformers + TRL + datasets, resident
PAGED_OR_8BIT = {"adamw_8bit": 2, "paged_adamw_8bit": 2, "paged_adamw_32bit": 8}


@dataclass
class MemoryEstimate:
    """Predicted peak training memory, in bytes, by part."""

    weights: int
    trainable: int  # trainable parameters + their gradients + optimizer state
    activations: int  # kept for backward at the peak
    transient: int  # the largest short-lived buffers (LM-head tiles, one layer's recompute)
    runtime: int  # resident libraries (CPU only: RSS counts them; GPU peak memory does not)
    tokens: int
    trainable_params: int

    @property
    def total(self) -> int:
        return self.weights + self.trainable + self.activations + self.transient + self.runtime

    @property
    def gb(self) -> float:
        return self.total / GB

    def parts_gb(self) -> dict[str, float]:
        return {k: round(getattr(self, k) / GB, 3) for k in
                ("weights", "trainable", "activations", "transient", "runtime")}

    def summary(self) -> str:
        p = self.parts_gb()
        text = (f"{self.gb:.2f} GB = weights {p['weights']:.2f} + trainable/grads/optimizer "
                f"{p['trainable']:.2f} + activations {p['activations']:.2f} + transient "
                f"{p['transient']:.2f}")
        return text + (f" + runtime {p['runtime']:.2f}" if self.runtime else "")


def _element_bytes(precision: str) -> int:
    return 4 if precision == "fp32" else 2


def trainable_params(shape: ModelShape, adapter: str, r: int = 16, targets: Any = None,
                     virtual_tokens: int = 20) -> int:
    if adapter == "full":
        return shape.n_params
    if adapter in ("lora", "rslora", "qlora", "dora"):
        n = shape.lora_params(r, targets)
        if adapter == "dora":  # a magnitude vector per adapted output feature
            n += shape.layers * sum(o for _, o in shape.linear_shapes().values())
        return n
    if adapter == "ia3":
        return shape.layers * (2 * shape.kv_dim + shape.intermediate)
    if adapter == "prefix":
        return virtual_tokens * shape.layers * 2 * shape.kv_dim
    return virtual_tokens * shape.hidden  # prompt_tuning, p_tuning (+ a small encoder)


def predict_memory(shape: ModelShape, *, adapter: str = "lora", r: int = 16,
                   targets: Any = None, bits: int = 4, precision: str = "bf16", rows: int = 1,
                   seq_len: int = 1024, tokens: int | None = None,
                   optimizer: str = "adamw_torch_fused", checkpoint_every: int = 0,
                   offload: bool = False, attention: str = "sdpa", masked: bool = True,
                   liger: bool = False, device: str = "cuda") -> MemoryEstimate:
    """Peak training memory for one micro-step of `rows` rows of `seq_len` tokens (`tokens` real
    ones, default rows x seq_len). A pure function: same inputs, same bytes.

    `checkpoint_every`: 0 keeps every layer's activations, n checkpoints every n-th layer
    (transformers' `every_n_layers`; 1 = all), `offload` holds the checkpointed inputs in host
    memory. `masked`: SDPA/eager get an explicit mask (padding, or several packed sequences per
    row); flash attention never needs one. `liger`: Liger's RMSNorm/SwiGLU kernels (estimated
    from what they keep for backward; not measured here).
    """
    e = _element_bytes(precision)
    kind = "full" if adapter == "full" else "adapter"
    key = (kind, 4 if kind == "full" and precision == "fp32" else e)
    if kind == "full" and precision != "fp32":
        key = ("full", 2)
    coef, cast_bytes = ACTIVATION_BYTES[key]
    n_tokens = int(tokens if tokens is not None else rows * seq_len)
    h, i, kv, L = shape.hidden, shape.intermediate, shape.kv_dim, shape.layers
    lora_r = r if adapter in ("lora", "rslora", "qlora", "dora") else 0
    n_train = trainable_params(shape, adapter, r, targets)

    # weights
    embed_and_norms = shape.n_params - L * shape.layer_linear_params()
    if adapter == "full":
        weights = shape.n_params * 4  # fp32 master weights (autocast computes in bf16/fp16)
    elif adapter == "qlora":
        per_linear = 1.0 + 0.03 if bits == 8 else 0.5 + 0.016  # + quantization constants
        weights = int(L * shape.layer_linear_params() * per_linear) + embed_and_norms * e
    else:
        weights = shape.n_params * e

    # trainable parameters, gradients, optimizer state
    param_b = 2 if adapter == "qlora" else 4  # TRL casts QLoRA adapters to bf16; else fp32
    optim_b = PAGED_OR_8BIT.get(optimizer, 2 * param_b)
    trainable = n_train * (param_b + param_b + optim_b)

    # activations kept for backward
    per_token_layer = (coef[0] * h + coef[1] * i + coef[2] * kv + coef[3] * lora_r
                       + coef[4] * shape.heads + coef[5])
    if liger and device == "cuda":  # RMSNorm keeps its input, SwiGLU recomputes silu(gate)
        per_token_layer -= 2 * (4 - e) * h + e * i
    per_layer_cast = cast_bytes * (n_train // max(L, 1) if kind == "adapter"
                                   else shape.layer_linear_params())
    mask = 0
    if masked and attention != "flash":
        mask_e = 4 if kind == "full" else e
        mask = rows * seq_len * seq_len * mask_e
        if attention == "eager":  # attention probabilities, kept per head
            mask += rows * shape.heads * seq_len * seq_len * 2 * e
    full_layer = n_tokens * per_token_layer + per_layer_cast + mask
    residual_b = 4 if kind == "full" else e
    if checkpoint_every:
        n_ckpt = math.ceil(L / checkpoint_every)
        kept_ckpt = 0 if offload else n_ckpt * n_tokens * residual_b * h
        outside = OUTSIDE_BYTES[key][1]
    else:
        n_ckpt, kept_ckpt = 0, 0
        outside = OUTSIDE_BYTES[key][0]
    # `outside` may be negative: the first layer keeps less than the others (see OUTSIDE_BYTES)
    activations = max(0, kept_ckpt + (L - n_ckpt) * full_layer
                      + n_tokens * (outside[0] * h + outside[1]))

    # transients: the fused LM head's tiles and hidden-state gradient; one layer's backward
    # workspace, plus the recomputed layer under checkpointing
    tile = min(n_tokens, LM_HEAD_TILE[0]) * min(shape.vocab, LM_HEAD_TILE[1])
    lm_head = tile * (e + (4 if device == "cuda" else 12)) + 4 * n_tokens * h
    if adapter == "full":
        lm_head += shape.vocab * h * 4  # the head's fp32 gradient
    layer_ws = e * n_tokens * (2 * h + 3 * i) + (full_layer if checkpoint_every else 0)
    transient = max(lm_head, layer_ws)
    runtime = CPU_RUNTIME_BYTES if device == "cpu" else 0
    return MemoryEstimate(weights=int(weights), trainable=int(trainable),
                          activations=int(activations), transient=int(transient),
                          runtime=runtime, tokens=n_tokens, trainable_params=n_train)


# -- the memory plan -------------------------------------------------------------------------------

GPU_MIN_MICRO_TOKENS = 4096  # below this a micro-step leaves a GPU idle: checkpoint instead


@dataclass
class MemoryPlan:
    """The micro-step the plan picked: rows per micro-step, how many micro-steps make one of the
    requested ones, activation checkpointing, and the prediction for it."""

    rows: int
    split: int  # micro-steps per requested micro-step (multiplies gradient accumulation)
    checkpoint_every: int  # 0 off, 1 every layer, n every n-th layer
    offload: bool
    estimate: MemoryEstimate
    budget_gb: float | None
    fits: bool
    why: str

    @property
    def checkpointing(self) -> bool:
        return self.checkpoint_every > 0

    def describe(self) -> str:
        if not self.checkpoint_every:
            ck = "no activation checkpointing"
        elif self.checkpoint_every == 1:
            ck = "checkpointing every layer"
        else:
            ck = f"checkpointing every {self.checkpoint_every}th layer"
        if self.offload:
            ck += ", checkpoints offloaded to host memory"
        return f"{self.rows} row(s) per micro-step, {ck}"


def memory_budget_gb(hw: Hardware, options: dict | None = None) -> float | None:
    """Memory a run may plan to use: `memory_budget_gb` if set, else 90% of the GPU's (less ~1 GB
    for the CUDA context and libraries' workspaces, which peak-allocated memory does not count)
    or 80% of RAM."""
    options = options or {}
    if options.get("memory_budget_gb"):
        return float(options["memory_budget_gb"])
    if hw.device == "cuda":
        return max(0.5, 0.9 * hw.gpu_memory_gb - 1.0) if hw.gpu_memory_gb else None
    return 0.8 * hw.ram_gb if hw.ram_gb else None


def _divisors_down(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def plan_memory(shape: ModelShape, *, rows: int, seq_len: int, budget_gb: float | None,
                device: str, tokens_per_row: float | None = None,
                checkpointing: bool | None = None, every_n: int | None = None,
                offload: bool | None = None, min_tokens: int | None = None,
                **predict: Any) -> MemoryPlan:
    """The fastest micro-step that fits `budget_gb`, trying in order: everything kept; the
    micro-step split in two, four, ... (while each still holds `min_tokens`, GPUs only: smaller
    micro-steps leave the GPU idle); checkpointing every n-th layer for n from the number of
    layers down to 2; every layer; every layer with smaller micro-steps; every layer offloaded.
    `checkpointing`/`every_n`/`offload` given (not None) restrict the candidates to them. When
    nothing fits, the smallest candidate is returned with `fits=False`.
    """
    L = shape.layers
    tpr = tokens_per_row if tokens_per_row is not None else float(seq_len)
    if min_tokens is None:
        min_tokens = GPU_MIN_MICRO_TOKENS if device == "cuda" else rows * seq_len

    def est(r: int, n: int, off: bool) -> MemoryEstimate:
        return predict_memory(shape, rows=r, seq_len=seq_len, tokens=int(round(r * tpr)),
                              checkpoint_every=n, offload=off, device=device, **predict)

    candidates: list[tuple[int, int, bool, str]] = [(rows, 0, False, "everything kept")]
    for r in _divisors_down(rows)[1:]:
        if r * seq_len >= min_tokens:
            candidates.append((r, 0, False, "smaller micro-steps, more accumulation"))
    for n in range(L, 1, -1):
        candidates.append((rows, n, False, "recompute part of the layers"))
    candidates.append((rows, 1, False, "recompute every layer"))
    for r in _divisors_down(rows)[1:]:
        candidates.append((r, 1, False, "recompute every layer, smaller micro-steps"))
    if device == "cuda":  # elsewhere activations already live in host memory
        for r in _divisors_down(rows):
            candidates.append((r, 1, True, "recompute every layer, checkpoints in host memory"))

    def allowed(c: tuple[int, int, bool, str]) -> bool:
        _, n, off, _ = c
        if checkpointing is False and n:
            return False
        if (checkpointing or every_n or offload) and not n:
            return False
        if every_n and n != every_n:
            return False
        if offload is not None and n and off != offload:
            return False
        return True

    chosen = [c for c in candidates if allowed(c)]
    if every_n and not chosen:  # e.g. every_n larger than the layer count
        chosen = [(rows, every_n, bool(offload), "as set")]
    budget = budget_gb * GB if budget_gb else None
    smallest = None
    for r, n, off, why in chosen:
        e = est(r, n, off)
        if budget is None or e.total <= budget:
            return MemoryPlan(r, max(1, rows // r), n, off, e, budget_gb, True, why)
        if smallest is None or e.total < smallest[0].total:
            smallest = (e, r, n, off)
    e, r, n, off = smallest
    return MemoryPlan(r, max(1, rows // r), n, off, e, budget_gb, False,
                      "nothing fits the budget; the smallest plan")
