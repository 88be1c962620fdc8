"""Local training throughput: plain TRL SFTTrainer defaults vs unitune's local recipe defaults.

Same model, same variable-length chat data, same LoRA adapter, same effective batch (in
examples), same number of optimizer steps. Each variant runs in its own fresh process so peak
memory is its own. Reports tokens/s (real, non-padding tokens, as TRL counts `num_tokens`), peak
memory (RSS on CPU; peak allocated GPU memory on CUDA), model FLOPs utilisation on CUDA, and the
ratio unitune / TRL.

    python benchmarks/local_throughput.py                      # CPU: ~12M-param Llama, fp32
    python benchmarks/local_throughput.py --device cuda --model qwen2-0.5b-random   # GPU, bf16

Everything is built offline: the tokenizer is unitune's tiny byte-level BPE, the models are
randomly initialised from fixed seeds. Needs torch, transformers, peft, trl, accelerate, datasets
(no bitsandbytes, no network). Works from a source checkout without `pip install` of unitune.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# FLOP/s peaks (dense bf16, no sparsity) used for MFU; from the vendors' data sheets.
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12,
             "L4": 121e12, "RTX 4090": 165e12}


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


def variant_trl(args, rows, model_dir: Path, out_dir: Path) -> dict:
    """Plain TRL: SFTTrainer + SFTConfig defaults; only what must be set is set."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    timing: dict = {}

    class Probe(TrainerCallback):
        def on_train_begin(self, a, state, control, **kw):
            timing["t0"] = time.perf_counter()
            timing["c0"] = time.process_time()

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                timing["tokens"] = logs["num_tokens"]
                timing["t1"] = time.perf_counter()
                timing["c1"] = time.process_time()
                timing.setdefault("losses", []).append(logs.get("loss"))

    cuda = args.device == "cuda"
    config = SFTConfig(output_dir=str(out_dir), per_device_train_batch_size=args.batch,
                       max_steps=args.steps, max_length=args.max_length, report_to="none",
                       logging_steps=1,  # to read num_tokens at the last step (cheap)
                       bf16=cuda,  # TRL's default bf16=True raises on a CPU-only machine
                       use_cpu=not cuda, seed=args.seed)
    from unitune.local.sft import TokenCounter

    tok = AutoTokenizer.from_pretrained(model_dir)
    trainer = SFTTrainer(model=str(model_dir), args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tok, peft_config=lora_config(), callbacks=[Probe()])
    counter = TokenCounter(trainer.data_collator)  # the same real-token count as variant (b)
    trainer.data_collator = counter
    if cuda:
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
                         "bf16": config.bf16}}


def variant_unitune(args, rows, model_dir: Path, out_dir: Path) -> dict:
    """unitune's local SFT recipe with its defaults (the worker's code path, minus the process)."""
    import torch

    from unitune.local.jobfiles import JobFiles, read_jsonl
    from unitune.local.sft import run
    from unitune.local.training import RunContext
    from unitune.spec import JobSpec

    spec = JobSpec.from_dict({
        "name": "bench", "base_model": str(model_dir), "data": {"train": "(in memory)"},
        "adapter": {"type": "lora", "r": 16, "alpha": 32},
        "hyperparameters": {"batch_size": args.batch, "max_steps": args.steps,
                            "max_seq_length": args.max_length, "seed": args.seed}})
    files = JobFiles(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"save_steps": 10**9, "device": args.device}
    for item in args.option or []:  # exploration only: --option precision=fp32
        key, _, value = item.partition("=")
        options[key] = {"true": True, "false": False}.get(value.lower(), value)
    ctx = RunContext(files=files, options=options, log=print)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run(spec, ctx, rows=rows)
    metrics = read_jsonl(files.metrics)
    status = files.read_status()
    rank = json.loads((files.ranks / "rank0.json").read_text())
    cfg = status["effective_config"]
    return {"tokens": rank["local_tokens"], "seconds": rank["train_seconds"],
            "cpu_seconds": rank["train_cpu_seconds"],
            "losses": [m["train_loss"] for m in metrics], "parameters": None, "trainable": None,
            "settings": {k: cfg.get(k) for k in ("precision", "packing", "packed_rows", "pad_to_multiple_of",
                                                 "activation_checkpointing",
                                                 "per_device_batch_size",
                                                 "gradient_accumulation_steps")}}


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


def mfu(result: dict, n_params: int, n_trainable: int, gpu: str) -> tuple[float | None, float | None]:
    """Model FLOPs utilisation: (4·N + 2·N_trainable) FLOPs per token for LoRA training
    (forward 2N, backward through activations 2N, weight gradients only for the adapter)."""
    peak = next((v for k, v in PEAK_BF16.items() if k in gpu), None)
    flops = result["tokens_per_s"] * (4 * n_params + 2 * n_trainable)
    return flops, (flops / peak if peak else None)


def summarise(rs: list[dict]) -> dict:
    """Median throughput over the repeats (the machine may be shared), worst peak memory."""
    import statistics

    out = dict(rs[len(rs) // 2])
    for key in ("tokens_per_s", "tokens_per_cpu_s", "seconds", "cpu_seconds"):
        out[key] = statistics.median(r[key] for r in rs)
    for key in ("peak_rss_mb", "peak_gpu_mb"):
        if key in rs[0]:
            out[key] = max(r[key] for r in rs)
    out["all_tokens_per_s"] = [round(r["tokens_per_s"], 1) for r in rs]
    return out


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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs per variant, alternating a/b (default 3 on CPU, 1 on CUDA); "
                         "medians are reported")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads for both variants (default: torch's choice); 1 makes "
                         "numbers on a shared machine far less noisy")
    ap.add_argument("--option", action="append", help="override a unitune local option for "
                    "variant (b), e.g. --option precision=fp32 (exploration; not the default)")
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
    args.model = args.model or ("qwen2-0.5b-random" if cuda else "tiny12m")
    args.steps = args.steps or (30 if cuda else 12)
    args.batch = args.batch or (16 if cuda else 8)
    args.examples = args.examples or args.steps * args.batch
    args.max_sentences = args.max_sentences or (12 if cuda else 6)
    gpu = torch.cuda.get_device_name(0) if cuda else None

    from unitune.local.synthetic import chat_rows

    with tempfile.TemporaryDirectory(prefix="ut-bench-") as tmp:
        tmp = Path(tmp)
        model_dir = tmp / "model"
        info = build_model(args.model, model_dir, "bfloat16" if cuda else "float32")
        rows = chat_rows(args.examples, seed=args.seed, max_sentences=args.max_sentences)
        (tmp / "rows.json").write_text(json.dumps(rows))
        print(f"model {args.model}: {info['parameters'] / 1e6:.1f}M parameters ({info['dtype']}), "
              f"{len(rows)} chat examples (1-{args.max_sentences} sentences per turn), "
              f"device {gpu or 'cpu'}, effective batch {args.batch}, {args.steps} steps, "
              f"threads {args.threads or 'default'}")
        runs: dict[str, list[dict]] = {}
        repeats = args.repeats or (1 if cuda else 3)
        order = [args.only] if args.only else ["trl", "unitune"]
        for variant in [v for _ in range(repeats) for v in order]:
            res_path = tmp / f"{variant}.json"
            cmd = [sys.executable, __file__, "--variant", variant, "--rows", str(tmp / "rows.json"),
                   "--model-dir", str(model_dir), "--workdir", str(tmp), "--result", str(res_path),
                   "--device", args.device, "--steps", str(args.steps), "--batch", str(args.batch),
                   "--max-length", str(args.max_length), "--seed", str(args.seed)]
            cmd += [x for o in (args.option or []) for x in ("--option", o)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
                       UNITUNE_HOME=str(tmp / "home"))
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-6000:])
                raise SystemExit(f"variant {variant} failed")
            runs.setdefault(variant, []).append(json.loads(res_path.read_text()))
        results = {v: summarise(rs) for v, rs in runs.items()}

    if args.only:
        r = results[args.only]
        print(f"{args.only}: {r['tokens_per_s']:.0f} tokens/s, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"settings {r['settings']}")
        return
    a, b = results["trl"], results["unitune"]
    n_params, n_train = a["parameters"], a["trainable"]
    print(f"\n{'':>24} {'TRL defaults':>16} {'unitune local':>16}")
    print(f"{'tokens/s':>24} {a['tokens_per_s']:>16.0f} {b['tokens_per_s']:>16.0f}")
    print(f"{'tokens trained':>24} {a['tokens']:>16.0f} {b['tokens']:>16.0f}")
    print(f"{'tokens/CPU-second':>24} {a['tokens_per_cpu_s']:>16.0f} {b['tokens_per_cpu_s']:>16.0f}")
    print(f"{'seconds (median)':>24} {a['seconds']:>16.2f} {b['seconds']:>16.2f}")
    print(f"{'peak RSS MB':>24} {a['peak_rss_mb']:>16.0f} {b['peak_rss_mb']:>16.0f}")
    if cuda:
        print(f"{'peak GPU MB':>24} {a['peak_gpu_mb']:>16.0f} {b['peak_gpu_mb']:>16.0f}")
        for name, r in (("trl", a), ("unitune", b)):
            r["model_flops_per_s"], r["mfu"] = mfu(r, n_params, n_train, gpu)
        if a["mfu"] is not None:
            print(f"{'MFU':>24} {a['mfu'] * 100:>15.1f}% {b['mfu'] * 100:>15.1f}%")
        print(f"{'model TFLOP/s':>24} {a['model_flops_per_s'] / 1e12:>16.1f} "
              f"{b['model_flops_per_s'] / 1e12:>16.1f}")
    print(f"{'final loss':>24} {a['losses'][-1]:>16.3f} {b['losses'][-1]:>16.3f}")
    ratio = b["tokens_per_s"] / a["tokens_per_s"]
    cpu_ratio = b["tokens_per_cpu_s"] / a["tokens_per_cpu_s"]
    mem_key = "peak_gpu_mb" if cuda else "peak_rss_mb"
    mem_ratio = b[mem_key] / a[mem_key]
    print(f"{'runs (tokens/s)':>24} {str(a['all_tokens_per_s']):>16} {str(b['all_tokens_per_s']):>16}")
    print(f"\nspeed-up unitune / TRL: {ratio:.2f}x tokens/s (median of {repeats}), {cpu_ratio:.2f}x "
          f"tokens per CPU-second; peak memory ratio {mem_ratio:.2f} (goal: >= 1.5x with <= 1.0)")
    print(f"TRL settings: {a['settings']}")
    print(f"unitune settings: {b['settings']}")
    summary = {"device": gpu or "cpu", "model": args.model, "parameters": n_params,
               "trainable": n_train, "steps": args.steps, "effective_batch": args.batch,
               "results": results, "speedup": ratio, "speedup_cpu_time": cpu_ratio,
               "memory_ratio": mem_ratio, "repeats": repeats}
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
