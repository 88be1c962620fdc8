"""Local training throughput: plain TRL SFTTrainer defaults vs unitune's local recipe defaults.

Same model, same variable-length chat data, same LoRA adapter, same learning rate, same effective
batch (in examples), same number of optimizer steps, and the loss over the same tokens (the
assistant turns: the one TRL setting changed besides the learning rate, so the two losses measure
the same thing). Each variant runs in its own fresh process so peak memory is its own. Reports
tokens/s (real, non-padding tokens, counted the same way for both), peak memory (RSS on CPU; peak
allocated GPU memory on CUDA) next to what unitune's memory plan predicted, model FLOPs
utilisation on CUDA, the loss of both variants after the same steps, and the ratios unitune / TRL.
On CUDA a third variant, `lean`, runs unitune with `memory_budget_gb` set to 0.6x the peak TRL
just measured: how fast unitune is at the memory goal.

    python benchmarks/local_throughput.py                      # CPU: ~13M-param Llama, fp32
    python benchmarks/local_throughput.py --device cuda        # GPU: qwen2-0.5b-random, bf16
    python benchmarks/local_throughput.py --device cuda --dry-run   # what the GPU run would do

`--dry-run` trains nothing and needs no GPU: it builds the data, prints both variants' settings,
unitune's memory plan (the same functions the recipe calls) and the predicted peak memory of
both for the target device (`--gpu-memory-gb`, default an H200's).

Everything is built offline: the tokenizer is unitune's tiny byte-level BPE, the models are
randomly initialised from fixed seeds. Needs torch, transformers, peft, trl, accelerate, datasets
(no bitsandbytes, no network; liger-kernel / flash-attn are used when installed). Works from a
source checkout without `pip install` of unitune.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# FLOP/s peaks (dense bf16, no sparsity) used for MFU; from the vendors' data sheets.
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12,
             "L4": 121e12, "RTX 4090": 165e12}
DEFAULT_LR = 2e-4  # unitune's LoRA default; TRL's own default is 2e-5
GOALS = {"cuda": {"speedup": 2.0, "memory": 0.6, "mfu": 0.40},
         "cpu": {"speedup": 1.5, "memory": 1.0, "mfu": None}}


def import_unitune() -> None:
    """Make `unitune` importable from a source checkout when it is not installed."""
    try:
        import unitune  # noqa: F401
        return
    except ImportError:
        pass
    for name, folder in (("unitune", ROOT / "sdk"), ("unitune.local", ROOT / "local")):
        spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if name == "unitune.local":
            sys.modules["unitune"].local = module


MODELS = {
    # ~12M parameters with the tiny BPE's 512-token vocabulary
    "tiny12m": dict(arch="llama", hidden_size=384, intermediate_size=1024, num_hidden_layers=8,
                    num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False),
    # Qwen2-0.5B's shape (494M parameters incl. its 151,936-row tied embedding), random weights
    "qwen2-0.5b-random": dict(arch="qwen2", hidden_size=896, intermediate_size=4864,
                              num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                              vocab_size=151936, tie_word_embeddings=True, rope_theta=1000000.0),
}


def model_shape(name: str, vocab: int):
    from unitune.local.memory import shape_from_config

    cfg = dict(MODELS[name])
    cfg["model_type"] = cfg.pop("arch")
    cfg.setdefault("vocab_size", vocab)
    return shape_from_config(cfg)


def build_model(name: str, dest: Path, dtype: str) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from unitune.local.tiny import build_tokenizer

    tok = build_tokenizer()
    cfg = dict(MODELS[name])
    arch = cfg.pop("arch")
    cfg.setdefault("vocab_size", len(tok))
    common = dict(max_position_embeddings=4096, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                  pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"), bos_token_id=None)
    torch.manual_seed(0)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**cfg, **common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**cfg, **common))
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return {"parameters": sum(p.numel() for p in model.parameters()), "dtype": dtype}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def lora_config():
    from peft import LoraConfig

    # the same adapter for both variants: unitune's default (r=16, alpha=32, all linear layers)
    return LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.05,
                      target_modules="all-linear", bias="none")


def trl_settings(args) -> dict:
    """SFTConfig fields the TRL variant sets: what must be set, the shared learning rate, and
    the loss on the assistant tokens (as unitune's); everything else is TRL's default."""
    cuda = args.device == "cuda"
    return dict(per_device_train_batch_size=args.batch, max_steps=args.steps,
                max_length=args.max_length, report_to="none",
                logging_steps=1,  # to read num_tokens at the last step (cheap)
                bf16=cuda,  # TRL's default bf16=True raises on a CPU-only machine
                use_cpu=not cuda, seed=args.seed, learning_rate=args.lr,
                assistant_only_loss=True)


def unitune_spec(args, model_dir: Path):
    from unitune.spec import JobSpec

    return JobSpec.from_dict({
        "name": "bench", "base_model": str(model_dir), "data": {"train": "(in memory)"},
        "adapter": {"type": "lora", "r": 16, "alpha": 32},
        "hyperparameters": {"batch_size": args.batch, "max_steps": args.steps,
                            "max_seq_length": args.max_length, "seed": args.seed,
                            "learning_rate": args.lr}})


def unitune_options(args) -> dict:
    options = {"save_steps": 10**9, "device": args.device}
    for item in args.option or []:  # e.g. --option precision=fp32, --option memory_budget_gb=2
        key, _, value = item.partition("=")
        options[key] = {"true": True, "false": False}.get(value.lower(), value)
        if key in ("memory_budget_gb",):
            options[key] = float(value)
        elif key in ("checkpoint_every_n_layers", "micro_tokens", "pad_to_multiple_of"):
            options[key] = int(value)
    return options


class Probe:
    """TrainerCallback pieces for the TRL variant: wall/CPU time of the training loop, losses."""

    @staticmethod
    def make(timing: dict):
        from transformers import TrainerCallback

        class _Probe(TrainerCallback):
            def on_train_begin(self, a, state, control, **kw):
                timing["t0"] = time.perf_counter()
                timing["c0"] = time.process_time()

            def on_log(self, a, state, control, logs=None, **kw):
                if logs and "num_tokens" in logs:
                    timing["t1"] = time.perf_counter()
                    timing["c1"] = time.process_time()
                    timing.setdefault("losses", []).append(logs.get("loss"))

        return _Probe()


def variant_trl(args, rows, model_dir: Path, out_dir: Path) -> dict:
    """Plain TRL: SFTTrainer + SFTConfig defaults; only what must be set is set."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from unitune.local.sft import TokenCounter

    timing: dict = {}
    config = SFTConfig(output_dir=str(out_dir), **trl_settings(args))
    tok = AutoTokenizer.from_pretrained(model_dir)
    trainer = SFTTrainer(model=str(model_dir), args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tok, peft_config=lora_config(),
                         callbacks=[Probe.make(timing)])
    counter = TokenCounter(trainer.data_collator)  # the same real-token count as unitune's
    trainer.data_collator = counter
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    n_params = sum(p.numel() for p in trainer.model.parameters())
    n_train = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    tokens = counter.consumed(args.steps * config.gradient_accumulation_steps)
    return {"tokens": tokens, "seconds": timing["t1"] - timing["t0"],
            "cpu_seconds": timing["c1"] - timing["c0"],
            "losses": timing["losses"], "parameters": n_params, "trainable": n_train,
            "settings": {"gradient_checkpointing": config.gradient_checkpointing,
                         "packing": config.packing, "padding_free": config.padding_free,
                         "per_device_train_batch_size": config.per_device_train_batch_size,
                         "bf16": config.bf16, "learning_rate": config.learning_rate,
                         "optim": getattr(config.optim, "value", str(config.optim)), "assistant_only_loss": True,
                         "attn_implementation": trainer.model.config._attn_implementation}}


def variant_unitune(args, rows, model_dir: Path, out_dir: Path) -> dict:
    """unitune's local SFT recipe with its defaults (the worker's code path, minus the process)."""
    import torch

    from unitune.local.jobfiles import JobFiles, read_jsonl
    from unitune.local.sft import run
    from unitune.local.training import RunContext

    files = JobFiles(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(files=files, options=unitune_options(args), log=print)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run(unitune_spec(args, model_dir), ctx, rows=rows)
    metrics = read_jsonl(files.metrics)
    status = files.read_status()
    rank = json.loads((files.ranks / "rank0.json").read_text())
    cfg = status["effective_config"]
    return {"tokens": rank["local_tokens"], "seconds": rank["train_seconds"],
            "cpu_seconds": rank["train_cpu_seconds"],
            "losses": [m["train_loss"] for m in metrics], "parameters": None, "trainable": None,
            "predicted_peak_mb": (cfg.get("predicted_memory_gb") or 0) * 1e9 / 2**20 or None,
            "settings": {k: cfg.get(k) for k in (
                "precision", "packing", "packed_rows", "pad_to_multiple_of",
                "activation_checkpointing", "checkpoint_every_n_layers", "activation_offload",
                "per_device_batch_size", "gradient_accumulation_steps", "learning_rate",
                "attn_implementation", "liger", "optimizer", "torch_compile",
                "memory_budget_gb", "predicted_memory_gb")},
            "notes": status.get("notes", [])}


def child(args) -> None:
    import_unitune()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = json.loads(Path(args.rows).read_text())
    out = Path(args.workdir) / args.variant
    fn = variant_trl if args.variant == "trl" else variant_unitune
    result = fn(args, rows, Path(args.model_dir), out)
    result["tokens_per_s"] = result["tokens"] / result["seconds"]
    result["tokens_per_cpu_s"] = result["tokens"] / max(result["cpu_seconds"], 1e-9)
    result["peak_rss_mb"] = peak_rss_mb()
    if args.device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    Path(args.result).write_text(json.dumps(result))


# -- FLOPs, predictions, summaries -------------------------------------------------------------------

def mean_context(lengths: list[int]) -> float:
    """Mean number of keys a token attends to under causal attention, over real tokens."""
    total = sum(lengths)
    return sum(n * (n + 1) / 2 for n in lengths) / total if total else 0.0


def model_flops_per_token(shape, n_trainable: int, mean_ctx: float) -> float:
    """Model FLOPs per trained token for adapter training (recomputation is not counted): the
    matmuls' forward 2N, backward through the activations 2N, weight gradients 2N_trainable
    (N: every layer's weights and the LM head, not the embedding lookup), and causal attention
    (QK^T and AV: 4·q_dim·context per layer forward, twice that backward)."""
    n_matmul = shape.layers * shape.layer_linear_params() + shape.vocab * shape.hidden
    attention = 3 * 4 * shape.layers * shape.q_dim * mean_ctx
    return 4 * n_matmul + 2 * n_trainable + attention


def mfu(tokens_per_s: float, flops_per_token: float, gpu: str | None) -> tuple[float, float | None]:
    peak = next((v for k, v in PEAK_BF16.items() if gpu and k in gpu), None)
    flops = tokens_per_s * flops_per_token
    return flops, (flops / peak if peak else None)


def predict_trl_mb(shape, args, lengths: list[int]) -> float:
    """TRL defaults' peak as unitune's memory model predicts it: padded batches (worst: one holds
    the longest example), every layer checkpointed, SDPA with a padding mask."""
    from unitune.local.memory import predict_memory

    longest = min(max(lengths), args.max_length)
    est = predict_memory(shape, adapter="lora", r=16, precision="bf16" if args.device == "cuda"
                         else "fp32", rows=args.batch, seq_len=longest,
                         checkpoint_every=1, attention="sdpa", masked=True,
                         optimizer="adamw_torch_fused", device=args.device)
    return est.total / 2**20


def summarise(rs: list[dict]) -> dict:
    """Median throughput over the repeats (the machine may be shared), worst peak memory."""
    out = dict(rs[len(rs) // 2])
    for key in ("tokens_per_s", "tokens_per_cpu_s", "seconds", "cpu_seconds"):
        out[key] = statistics.median(r[key] for r in rs)
    for key in ("peak_rss_mb", "peak_gpu_mb"):
        if key in rs[0]:
            out[key] = max(r[key] for r in rs)
    out["all_tokens_per_s"] = [round(r["tokens_per_s"], 1) for r in rs]
    return out


def tail_loss(losses: list, k: int = 3) -> float:
    vals = [x for x in losses if x is not None][-k:]
    return sum(vals) / len(vals)


def dry_run(args, rows: list[dict], tok) -> dict:
    """What the run would do on the target device, without training: both variants' settings,
    unitune's effective config and memory plan (the recipe's own functions) and the predicted
    peak memory of both."""
    from unitune.local.hardware import Hardware, choose
    from unitune.local.jobfiles import JobFiles
    from unitune.local.sft import plan_packing
    from unitune.local.training import RunContext, common_args

    lengths = [len(tok.apply_chat_template(r["messages"], return_dict=False)) for r in rows]
    shape = model_shape(args.model, len(tok))
    if args.device == "cuda":
        hw = Hardware("cuda", gpus=1, gpu_name=args.gpu_name, gpu_memory_gb=args.gpu_memory_gb,
                      bf16=True, fp16=True)
    else:
        from unitune.local.hardware import detect

        hw = detect("cpu")
    spec = unitune_spec(args, Path("/nonexistent/model"))
    options = unitune_options(args)
    eff = choose(spec, hw, shape=shape, options=options)
    packed, extra = plan_packing(spec, eff, hw, shape, tok, rows, options)
    with tempfile.TemporaryDirectory(prefix="ut-dry-") as tmp:
        ctx = RunContext(files=JobFiles(Path(tmp)), options=options)
        unitune_args = common_args(spec, eff, ctx, has_eval=False)
    unitune_args.update(packed)
    unitune_args.pop("output_dir", None)
    trl_peak = predict_trl_mb(shape, args, lengths)
    return {"device": args.device, "gpu": args.gpu_name if args.device == "cuda" else None,
            "model": args.model, "parameters": shape.n_params, "examples": len(rows),
            "mean_tokens": statistics.mean(lengths), "longest": max(lengths),
            "trl": {"settings": trl_settings(args), "predicted_peak_mb": trl_peak},
            "unitune": {"effective_config": {**eff.to_dict(), **extra},
                        "trainer_args": unitune_args,
                        "predicted_peak_mb": eff.predicted_memory_gb * 1e9 / 2**20},
            "predicted_memory_ratio": eff.predicted_memory_gb * 1e9 / 2**20 / trl_peak,
            "flops_per_token": model_flops_per_token(
                shape, shape.lora_params(16), mean_context(lengths))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--model", default=None, choices=sorted(MODELS),
                    help="default: tiny12m on CPU, qwen2-0.5b-random on CUDA")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None, help="effective batch in examples")
    ap.add_argument("--examples", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--max-sentences", type=int, default=None,
                    help="longest turn in sentences (lengths vary from 1 to this)")
    ap.add_argument("--lr", type=float, default=DEFAULT_LR,
                    help="learning rate of BOTH variants (default 2e-4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs per variant, alternating (default 3 on CPU, 1 on CUDA); "
                         "medians are reported")
    ap.add_argument("--variants", default=None,
                    help="comma-separated among trl, unitune, lean (default: trl,unitune on "
                         "CPU; trl,unitune,lean on CUDA)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads for every variant (default: torch's choice); 1 makes "
                         "numbers on a shared machine far less noisy")
    ap.add_argument("--option", action="append", help="override a unitune local option for "
                    "the unitune variant, e.g. --option precision=fp32 (exploration)")
    ap.add_argument("--dry-run", action="store_true",
                    help="train nothing: print settings and predicted memory for the device")
    ap.add_argument("--gpu-name", default="NVIDIA H200", help="--dry-run with --device cuda: "
                    "the GPU to plan for")
    ap.add_argument("--gpu-memory-gb", type=float, default=150.0,
                    help="--dry-run with --device cuda: its memory (H200: 150 GB, 141 GiB)")
    ap.add_argument("--only", choices=["trl", "unitune"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--rows", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        return child(args)

    import_unitune()
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = args.device == "cuda"
    if cuda and not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU here (use --dry-run to plan)")
    args.model = args.model or ("qwen2-0.5b-random" if cuda else "tiny12m")
    args.steps = args.steps or (30 if cuda else 12)
    args.batch = args.batch or (16 if cuda else 8)
    args.examples = args.examples or args.steps * args.batch
    args.max_sentences = args.max_sentences or (12 if cuda else 6)
    variants = (args.variants or ("trl,unitune,lean" if cuda else "trl,unitune")).split(",")
    if args.only:
        variants = [args.only]

    from unitune.local.synthetic import chat_rows
    from unitune.local.tiny import build_tokenizer

    rows = chat_rows(args.examples, seed=args.seed, max_sentences=args.max_sentences)
    tok = build_tokenizer()
    if args.dry_run:
        plan = dry_run(args, rows, tok)
        print(json.dumps(plan, indent=2, default=str))
        if args.json:
            Path(args.json).write_text(json.dumps(plan, indent=2, default=str))
        return

    gpu = torch.cuda.get_device_name(0) if cuda else None
    lengths = [len(tok.apply_chat_template(r["messages"], return_dict=False)) for r in rows]
    shape = model_shape(args.model, len(tok))
    with tempfile.TemporaryDirectory(prefix="ut-bench-") as tmp:
        tmp = Path(tmp)
        model_dir = tmp / "model"
        info = build_model(args.model, model_dir, "bfloat16" if cuda else "float32")
        (tmp / "rows.json").write_text(json.dumps(rows))
        print(f"model {args.model}: {info['parameters'] / 1e6:.1f}M parameters ({info['dtype']}), "
              f"{len(rows)} chat examples (1-{args.max_sentences} sentences per turn, mean "
              f"{statistics.mean(lengths):.0f} tokens, longest {max(lengths)}), device "
              f"{gpu or 'cpu'}, effective batch {args.batch}, {args.steps} steps, learning rate "
              f"{args.lr:g} for every variant, threads {args.threads or 'default'}", flush=True)
        runs: dict[str, list[dict]] = {}
        repeats = args.repeats or (1 if cuda else 3)
        for i, variant in enumerate(v for _ in range(repeats) for v in variants):
            res_path = tmp / f"{variant}-{i}.json"
            options = list(args.option or [])
            if variant == "lean":
                trl_peak = runs["trl"][-1]["peak_gpu_mb" if cuda else "peak_rss_mb"]
                options.append(f"memory_budget_gb={0.6 * trl_peak * 2**20 / 1e9:.3f}")
            cmd = [sys.executable, __file__, "--variant",
                   "unitune" if variant == "lean" else variant, "--rows", str(tmp / "rows.json"),
                   "--model-dir", str(model_dir), "--workdir", str(tmp / f"run-{i}"),
                   "--result", str(res_path), "--device", args.device, "--steps",
                   str(args.steps), "--batch", str(args.batch), "--max-length",
                   str(args.max_length), "--seed", str(args.seed), "--lr", str(args.lr)]
            cmd += [x for o in options for x in ("--option", o)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
                       UNITUNE_HOME=str(tmp / "home"))
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-6000:])
                raise SystemExit(f"variant {variant} failed")
            runs.setdefault(variant, []).append(json.loads(res_path.read_text()))
            print(f"  {variant}: {runs[variant][-1]['tokens_per_s']:.0f} tokens/s", flush=True)
        results = {v: summarise(rs) for v, rs in runs.items()}

    if args.only:
        r = results[args.only]
        print(f"{args.only}: {r['tokens_per_s']:.0f} tokens/s, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"settings {r['settings']}")
        return
    report(args, results, shape, lengths, gpu, repeats)


def report(args, results: dict, shape, lengths: list[int], gpu: str | None,
           repeats: int) -> None:
    cuda = args.device == "cuda"
    a = results["trl"]
    mem_key = "peak_gpu_mb" if cuda else "peak_rss_mb"
    a["predicted_peak_mb"] = predict_trl_mb(shape, args, lengths)
    fpt = model_flops_per_token(shape, a["trainable"], mean_context(lengths))
    names = [v for v in ("trl", "unitune", "lean") if v in results]
    head = {"trl": "TRL defaults", "unitune": "unitune local", "lean": "unitune @0.6x mem"}
    print("\n" + f"{'':>26}" + "".join(f"{head[v]:>20}" for v in names))

    def line(label: str, fmt, key=None, fn=None) -> None:
        cells = []
        for v in names:
            value = fn(results[v]) if fn else results[v].get(key)
            cells.append(f"{fmt(value) if value is not None else '—':>20}")
        print(f"{label:>26}" + "".join(cells))

    line("tokens/s", lambda x: f"{x:.0f}", "tokens_per_s")
    line("tokens trained", lambda x: f"{x:.0f}", "tokens")
    line("tokens/CPU-second", lambda x: f"{x:.0f}", "tokens_per_cpu_s")
    line("seconds (median)", lambda x: f"{x:.2f}", "seconds")
    line("peak RSS MB", lambda x: f"{x:.0f}", "peak_rss_mb")
    if cuda:
        line("peak GPU MB", lambda x: f"{x:.0f}", "peak_gpu_mb")
    line("predicted peak MB", lambda x: f"{x:.0f}", "predicted_peak_mb")
    line("measured / predicted", lambda x: f"{x:.2f}",
         fn=lambda r: r[mem_key] / r["predicted_peak_mb"] if r.get("predicted_peak_mb") else None)
    for r in results.values():
        r["model_flops_per_s"], r["mfu"] = mfu(r["tokens_per_s"], fpt, gpu)
    if cuda:
        line("MFU", lambda x: f"{100 * x:.1f}%", "mfu")
        line("model TFLOP/s", lambda x: f"{x / 1e12:.1f}", "model_flops_per_s")
    line("final loss", lambda x: f"{x:.4f}", fn=lambda r: r["losses"][-1])
    line("mean loss, last 3 steps", lambda x: f"{x:.4f}", fn=lambda r: tail_loss(r["losses"]))
    line("runs (tokens/s)", str, "all_tokens_per_s")
    goal = GOALS["cuda" if cuda else "cpu"]
    summary = {"device": gpu or "cpu", "model": args.model, "parameters": a["parameters"],
               "trainable": a["trainable"], "steps": args.steps, "effective_batch": args.batch,
               "learning_rate": args.lr, "repeats": repeats, "flops_per_token": fpt,
               "goal": goal, "results": results, "compare": {}}
    print()
    for v in names[1:]:
        b = results[v]
        ratio = b["tokens_per_s"] / a["tokens_per_s"]
        cpu_ratio = b["tokens_per_cpu_s"] / a["tokens_per_cpu_s"]
        mem_ratio = b[mem_key] / a[mem_key]
        loss_gap = (tail_loss(b["losses"]) - tail_loss(a["losses"])) / tail_loss(a["losses"])
        met = ratio >= goal["speedup"] and mem_ratio <= goal["memory"] and \
            (goal["mfu"] is None or (b.get("mfu") or 0) >= goal["mfu"])
        print(f"{head[v]} / TRL: {ratio:.2f}x tokens/s, {cpu_ratio:.2f}x tokens per CPU-second, "
              f"peak memory ratio {mem_ratio:.2f}, loss (mean of the last 3 steps) "
              f"{100 * loss_gap:+.1f}% — goal >= {goal['speedup']}x at <= {goal['memory']}x"
              + (f" with MFU >= {goal['mfu']:.0%}" if goal["mfu"] else "")
              + (": met" if met else ": not met"))
        summary["compare"][v] = {"speedup": ratio, "speedup_cpu_time": cpu_ratio,
                                 "memory_ratio": mem_ratio, "loss_gap": loss_gap, "goal_met": met}
    for v in names:
        print(f"{head[v]} settings: {results[v]['settings']}")
        for note in results[v].get("notes", []):
            print(f"  note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
