"""`unitune generate`: call a tuned model (or its base, or any model) on every backend."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EXIT_USAGE, console, fail, handle_errors, print_json


def _caller(job: str | None, model: str | None, base_url: str | None, base: bool):
    from ..inference.registry import caller_for, caller_for_job

    if model or base_url:
        return caller_for(model or "openai:default", base_url=base_url)
    assert job is not None
    p = Path(job).expanduser()
    if (p / "status.json").exists():  # a local job directory
        from ..local.inference import caller_for_dir

        return caller_for_dir(p, base=base)
    return caller_for_job(job, base=base)


def _row(caller, gen) -> dict:
    return {"model": caller.model, "text": gen.text, "finish_reason": gen.finish_reason,
            "usage": gen.usage, "latency_s": round(gen.latency_s, 4)}


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def generate(
        args: list[str] = typer.Argument(..., metavar="[JOB] PROMPT",
                                         help="A job id (or prefix, or a local job directory) "
                                              "and the user message; with --model or "
                                              "--base-url only the message."),
        model: Optional[str] = typer.Option(None, "--model", help="BACKEND:MODEL instead of a "
                                            "job, e.g. openai:gpt-4.1-mini-2025-04-14, "
                                            "bedrock:amazon.nova-micro-v1:0, "
                                            "vertex:gemini-2.5-flash, local:unitune/tiny-chat."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="Any OpenAI-compatible "
                                               "server (vLLM, llama.cpp, Ollama), e.g. "
                                               "http://127.0.0.1:8000/v1; --model names its "
                                               "model."),
        base: bool = typer.Option(False, "--base", help="Answer with the job's base model."),
        compare: bool = typer.Option(False, "--compare", help="Answer with the base and the "
                                     "tuned model, side by side."),
        system: Optional[str] = typer.Option(None, "--system", help="A system message."),
        max_tokens: int = typer.Option(256, "--max-tokens", "--max-new-tokens", min=1,
                                       max=32768, help="Most tokens in the answer."),
        temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0,
                                          help="0 = greedy (default)."),
        seed: int = typer.Option(0, "--seed", help="Sampling seed, where the backend takes "
                                 "one."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON: {model, text, "
                                      "finish_reason, usage, latency_s} (--compare: "
                                      "{base: …, tuned: …})."),
    ) -> None:
        """Answer a prompt with a job's tuned model (or its base), or any BACKEND:MODEL."""
        from ..inference.batch import call_once
        from ..inference.types import GenParams

        if model or base_url:
            if len(args) != 1:
                raise fail("with --model / --base-url give only the prompt",
                           'e.g. unitune generate --model openai:gpt-4.1-mini "hello"',
                           EXIT_USAGE)
            if base or compare:
                raise fail("--base / --compare need a job, not --model",
                           "unitune generate JOB \"…\" --compare", EXIT_USAGE)
            job, prompt = None, args[0]
        else:
            if len(args) != 2:
                raise fail("give a job and a prompt (or --model BACKEND:MODEL and a prompt)",
                           'e.g. unitune generate JOB "hello"  |  unitune generate --model '
                           'openai:gpt-4.1-mini "hello"', EXIT_USAGE)
            job, prompt = args
        messages = ([{"role": "system", "content": system}] if system else []) + \
            [{"role": "user", "content": prompt}]
        params = GenParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        log = lambda m: console(stderr=True).print(f"  {m}", markup=False)  # noqa: E731
        if compare:
            out = {}
            for which in ("base", "tuned"):
                caller = _caller(job, None, None, which == "base")
                out[which] = (caller, call_once(caller, messages, params, log=log))
            if json_out:
                print_json({k: _row(c, g) for k, (c, g) in out.items()})
                return
            from rich.table import Table

            table = Table(show_lines=True)
            for k, (c, g) in out.items():
                table.add_column(f"{k}: {c.label}")
            table.add_row(*[(g.text or "(empty)") for _c, g in out.values()])
            console().print(table)
            return
        caller = _caller(job, model, base_url, base)
        gen = call_once(caller, messages, params, log=log)
        if json_out:
            print_json(_row(caller, gen))
            return
        console().print(gen.text or "(empty)", markup=False, highlight=False)
        u = gen.usage
        console(stderr=True).print(
            f"[dim]{caller.label} · {gen.finish_reason} · {u.get('input_tokens')} in / "
            f"{u.get('output_tokens')} out tokens · {gen.latency_s:.2f}s[/]", highlight=False)
