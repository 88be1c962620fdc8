"""Throughput of `unitune validate` against a cookbook-style checker and the parse+encode floor.

Generates ~200k mixed English/Chinese ChatML examples (~250 MB) in a temp dir, then times, each in
its own subprocess (wall time and peak RSS from wait4's ru_maxrss):

  (a) `unitune validate FILE --target openai:gpt-4.1-mini-2025-04-14` — every check on, exact
      o200k token counts with OpenAI's per-message framing, duplicates, stats;
  (b) baseline: the way OpenAI's cookbook checker works — `json.loads` per line, its format checks
      and warnings, `encoding.encode(value)` for every message value in Python loops, and its
      assistant-token pass that encodes assistant messages again (streamed line by line rather
      than loading the whole file as the cookbook does, which only helps it);
  (b1) the same with the assistant tokens tallied from the first encode: a tighter baseline;
  (c) floor: orjson parse of every line + `encode_ordinary` of every message content, spread over
      all cores with threads (tiktoken releases the GIL), in bounded chunks;
  (c2) floor with unitune's counting method (one `<|endoftext|>`-joined encode per chunk into a
      token buffer) and nothing else — what (a) costs beyond counting.

    python benchmarks/validate_throughput.py [--examples 200000] [--keep FILE]

Prints examples/s, ratios a/b (and a/b1) and a/c, and peak RSS. Goals: (a) >= 1.6x faster than (b); (a)'s
peak RSS < 300 MB whatever the file size.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "validate" / "data"
TARGET = "openai:gpt-4.1-mini-2025-04-14"

# ---------------------------------------------------------------------------------------------
# data


def _pools():
    zh = [s for s in (DATA / "zh_sentences.txt").read_text(encoding="utf-8").splitlines() if s]
    en = [s for s in (DATA / "en_paragraphs.txt").read_text(encoding="utf-8").splitlines() if s]
    # Sentence-level English pieces too, so texts vary in length and mix.
    en += [p.strip() + "." for para in en for p in para.split(". ") if len(p) > 20]
    return zh, en


SYSTEMS = [
    "You are a helpful customer-service assistant for an online store. Answer politely and "
    "concisely.",
    "你是一家电商平台的智能客服，请用礼貌、简洁的中文回答用户的问题。",
    "You are a bilingual support agent. Reply in the customer's language (English or Chinese).",
    "你是技术支持助手。回答时先确认问题，再给出具体步骤。",
]


def generate(path: Path, n: int, seed: int = 0) -> int:
    """Write n ChatML examples; returns the file size. Deterministic for a seed."""
    import orjson

    zh, en = _pools()
    r = random.Random(seed)
    names = ["Alice", "王伟", "李娜", "Bob", "张敏", "Carlos", "刘洋", "Priya"]

    def text(lang: str, k: int) -> str:
        parts = []
        for _ in range(k):
            use = lang if lang != "mix" else r.choice(("zh", "en"))
            if use == "zh":
                parts.append(r.choice(zh))
            else:
                parts.append(r.choice(en))
            if r.random() < 0.3:
                parts.append(f" #{r.randrange(10**7, 10**8)} ")
        return ("" if lang == "zh" else " ").join(parts)

    with open(path, "wb") as fh:
        buf = []
        for i in range(n):
            lang = r.choice(("zh", "en", "mix", "zh", "mix"))
            msgs = [{"role": "system", "content": r.choice(SYSTEMS)}]
            for _ in range(r.choice((1, 1, 2, 2, 3))):
                msgs.append({"role": "user", "content": f"{r.choice(names)}: " + text(lang, r.randint(1, 3))})
                msgs.append({"role": "assistant", "content": text(lang, r.randint(2, 5))})
            buf.append(orjson.dumps({"messages": msgs}))
            if len(buf) >= 5000:
                fh.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    return path.stat().st_size


# ---------------------------------------------------------------------------------------------
# (b) cookbook-style baseline and (c) floors, run in subprocesses via --run


def run_baseline(path: str, single_pass: bool = False) -> None:
    """OpenAI's cookbook checker, streamed. `single_pass` tallies assistant tokens from the same
    encode instead of encoding assistant messages a second time as the cookbook does."""
    import json
    from collections import defaultdict

    from unitune.tokens import load_encoding

    encoding = load_encoding("o200k_base")  # the cookbook: tiktoken.get_encoding(...)
    format_errors: dict = defaultdict(int)
    n_tokens, assistant_tokens, n = [], 0, 0
    n_missing_system = n_missing_user = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            ex = json.loads(line)
            n += 1
            if not isinstance(ex, dict):
                format_errors["data_type"] += 1
                continue
            messages = ex.get("messages", None)
            if not messages:
                format_errors["missing_messages_list"] += 1
                continue
            for message in messages:
                if "role" not in message or "content" not in message:
                    format_errors["message_missing_key"] += 1
                if any(k not in ("role", "content", "name", "function_call", "weight")
                       for k in message):
                    format_errors["message_unrecognized_key"] += 1
                if message.get("role", None) not in ("system", "user", "assistant", "function"):
                    format_errors["unrecognized_role"] += 1
                content = message.get("content", None)
                function_call = message.get("function_call", None)
                if (not content and not function_call) or not isinstance(content, str):
                    format_errors["missing_content"] += 1
            if not any(message.get("role", None) == "assistant" for message in messages):
                format_errors["example_missing_assistant_message"] += 1
            # the cookbook's warnings pass
            if not any(message["role"] == "system" for message in messages):
                n_missing_system += 1
            if not any(message["role"] == "user" for message in messages):
                n_missing_user += 1
            # num_tokens_from_messages (tokens_per_message=3, tokens_per_name=1, +3 priming)
            num = 0
            for message in messages:
                num += 3
                for key, value in message.items():
                    k = len(encoding.encode(value))
                    num += k
                    if key == "name":
                        num += 1
                    if single_pass and key == "content" and message.get("role") == "assistant":
                        assistant_tokens += k
            n_tokens.append(num + 3)
            if not single_pass:  # num_assistant_tokens_from_messages: the cookbook encodes again
                for message in messages:
                    if message["role"] == "assistant":
                        assistant_tokens += len(encoding.encode(message["content"]))
    n_too_long = sum(t > 65536 for t in n_tokens)
    print(f"baseline{'-1pass' if single_pass else ''}: {n} examples, {sum(n_tokens)} tokens, "
          f"{assistant_tokens} assistant, {n_too_long} too long, {dict(format_errors)}")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _floor(path: str, joined: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from collections import deque

    import orjson

    from unitune.tokens import load_encoding

    enc = load_encoding("o200k_base")
    encode = enc.encode_ordinary
    core = enc._core_bpe
    sep = "<|endoftext|>"

    def count(texts):
        if joined:
            return memoryview(core.encode_to_tiktoken_buffer(sep.join(texts), {sep})).nbytes // 4 - len(texts) + 1
        return sum(len(encode(t)) for t in texts)

    workers = _cpus()
    total, n = 0, 0
    pending: deque = deque()
    with ThreadPoolExecutor(workers) as pool, open(path, "rb") as fh:
        chunk, chars = [], 0
        for line in fh:
            obj = orjson.loads(line)
            n += 1
            for m in obj["messages"]:
                c = m["content"]
                chunk.append(c)
                chars += len(c)
            if chars >= 1 << 20:
                pending.append(pool.submit(count, chunk))
                chunk, chars = [], 0
                while len(pending) > workers + 1:
                    total += pending.popleft().result()
        if chunk:
            pending.append(pool.submit(count, chunk))
        while pending:
            total += pending.popleft().result()
    print(f"floor{'-joined' if joined else ''}: {n} examples, {total} content tokens")


# ---------------------------------------------------------------------------------------------


def measure(cmd: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS (MB) and the last output line of a subprocess."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.decode("utf-8", "replace").strip()
    lines = text.splitlines() or [""]
    # unitune validate: show its token total (compare with the baseline's), else the last line
    last = next((ln for ln in lines if " tokens, max " in ln), lines[-1])
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=200_000)
    ap.add_argument("--keep", help="write the generated file here (and reuse it if present)")
    ap.add_argument("--skip", default="", help="comma list of runs to skip: a,b,b1,c,c2")
    ap.add_argument("--run", choices=["baseline", "baseline-1pass", "floor", "floor-joined"],
                    help=argparse.SUPPRESS)
    ap.add_argument("file", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        {"baseline": run_baseline, "baseline-1pass": lambda p: run_baseline(p, True),
         "floor": lambda p: _floor(p, False),
         "floor-joined": lambda p: _floor(p, True)}[args.run](args.file)
        return

    with tempfile.TemporaryDirectory(prefix="unitune-bench-") as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "chat.jsonl"
        if not path.exists():
            t0 = time.perf_counter()
            size = generate(path, args.examples)
            print(f"generated {args.examples:,} examples, {size / 1e6:.0f} MB in "
                  f"{time.perf_counter() - t0:.1f}s -> {path}", flush=True)
        else:
            print(f"reusing {path} ({path.stat().st_size / 1e6:.0f} MB)")
        n = sum(1 for _ in open(path, "rb"))
        me = [sys.executable, str(Path(__file__).resolve())]
        runs = {
            "a": [sys.executable, "-m", "unitune", "validate", str(path), "--target", TARGET],
            "b": me + ["--run", "baseline", str(path)],
            "b1": me + ["--run", "baseline-1pass", str(path)],
            "c": me + ["--run", "floor", str(path)],
            "c2": me + ["--run", "floor-joined", str(path)],
        }
        skip = set(filter(None, args.skip.split(",")))
        results = {}
        for name, cmd in runs.items():
            if name in skip:
                continue
            load = os.getloadavg()[0]
            wall, cpu, rss, last = measure(cmd)
            results[name] = wall
            print(f"({name:>2}) {wall:7.2f} s  {n / wall:9,.0f} ex/s  cpu {cpu:6.1f} s  "
                  f"peak RSS {rss:5.0f} MB  load {load:4.1f}  | {last}", flush=True)
        print(f"cores usable: {_cpus()}, examples: {n:,} (load = 1-min load average before "
              f"each run; other processes on the machine perturb wall times)")
        if "a" in results and "b" in results:
            print(f"a/b: validate is {results['b'] / results['a']:.2f}x faster than the baseline "
                  f"(goal >= 1.6x)")
        if "a" in results and "b1" in results:
            print(f"a/b1: validate is {results['b1'] / results['a']:.2f}x faster than the "
                  f"single-pass baseline (assistant tokens not encoded twice)")
        if "a" in results and "c" in results:
            print(f"a/c: validate takes {results['a'] / results['c']:.2f}x the floor's time")
        if "a" in results and "c2" in results:
            print(f"a/c2: validate takes {results['a'] / results['c2']:.2f}x the joined-encode "
                  f"floor's time")


if __name__ == "__main__":
    main()
