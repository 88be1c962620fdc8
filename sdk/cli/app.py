"""The `unitune` command line: a typer app whose commands live in one module per area.

Each module in COMMAND_MODULES exposes `register(app)`; it imports only typer at top level, so
`unitune --help` stays well under half a second and never imports torch or a vendor SDK.
"""
from __future__ import annotations

import importlib

import typer

from .common import handle_errors

app = typer.Typer(
    name="unitune",
    help="One job spec, any backend: validate data, compare costs and fine-tune on OpenAI, Azure "
         "OpenAI, AWS Bedrock, Vertex AI or locally (LoRA/QLoRA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Order = order in `unitune --help`.
COMMAND_MODULES = (
    "check_cmds",   # validate, stats
    "data_cmds",    # convert, split, dedupe
    "cost_cmds",    # compare, plan, models
    "jobs_cmds",    # train, status, list, watch, cancel, metrics, logs, resume, deploy, undeploy
    "local_cmds",   # merge
    "export_cmds",  # export
    "inference_cmds",  # generate
    "eval_cmds",    # eval, score, diagnose
    "serve_cmds",   # serve
    "track_cmds",   # tracking (metrics --to lives in jobs_cmds)
    "advice_cmds",  # synth, advise, import, export-config
    "demo_cmds",    # demo
    "registry_cmds",  # registry check | recover
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"unitune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """One job spec, any backend."""


@app.command()
@handle_errors
def schema(as_json: bool = typer.Option(True, "--json", help="Print JSON (the only form; "
                                        "accepted for symmetry with every command).")) -> None:
    """Print the JSON schema of a job spec, with every backend's `backend_options` documented."""
    from ..backends import available_backends, load_backend_class
    from ..errors import UnituneError
    from ..spec import JobSpec
    from .common import print_json

    doc = JobSpec.model_json_schema()
    per_backend: dict = {}
    for name in sorted(available_backends()):
        try:
            model = getattr(load_backend_class(name), "options_model", None)
        except UnituneError as exc:
            per_backend[name] = {"type": "object", "description": f"(not loadable: {exc.message})"}
            continue
        if model is not None:
            per_backend[name] = model.model_json_schema()
    opts = doc.setdefault("properties", {}).setdefault("backend_options", {})
    opts["properties"] = per_backend
    print_json(doc)


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as _exc:  # a module still being written; see DEVELOPING notes
        if _exc.name != f"{__package__}.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
