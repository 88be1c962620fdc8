"""Every `unitune …` command a hint, docstring or message names must parse with the real CLI:
a hint that sends the user to a command or flag that does not exist is a bug (issue 12 item 15)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer

from unitune.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("sdk", "providers", "local") for p in (ROOT / d).rglob("*.py")]
DOCS = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
MENTION = re.compile(r"`(unitune [^`]+)`")
PLACEHOLDER = re.compile(r"^(<.*>|\{.*\}|[A-Z][A-Z_0-9]*|…|\.\.\.|\[.*\]|ID\b.*)$")


def _mentions() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES + DOCS:
        for m in MENTION.finditer(path.read_text(encoding="utf-8")):
            found.append((f"{path.relative_to(ROOT)}", m.group(1)))
    return found


def _args(text: str) -> list[str]:
    text = text.split(" # ")[0].replace("…", "").strip()
    try:
        words = shlex.split(text)[1:]
    except ValueError:
        words = text.split()[1:]
    return ["x" if PLACEHOLDER.match(w) else w for w in words if w not in ("[", "]")]


def _parse(cmd: click.Command, name: str, args: list[str], parent=None) -> None:
    try:
        ctx = cmd.make_context(name, list(args), parent=parent)
    except click.exceptions.MissingParameter:
        return  # an argument left out of a hint ("`unitune watch`") is fine
    except (click.exceptions.Exit, typer.Exit):
        return  # --help / --version
    if isinstance(cmd, click.Group):
        rest = [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        sub_name, sub, sub_args = cmd.resolve_command(ctx, rest)
        _parse(sub, sub_name, sub_args, parent=ctx)


@pytest.mark.parametrize("where,text", _mentions())
def test_named_command_parses(where: str, text: str) -> None:
    cli = typer.main.get_command(app)
    try:
        _parse(cli, "unitune", _args(text))
    except click.exceptions.UsageError as exc:
        pytest.fail(f"{where}: `{text}` does not parse: {exc.format_message()}")


def test_there_are_hints_to_check() -> None:
    assert len(_mentions()) > 30
