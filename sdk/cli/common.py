"""Shared CLI plumbing: consoles, JSON output, and turning UnituneError into a clean exit.

Command modules import only typer and this module at top level; everything heavy is imported
inside the command functions so `unitune --help` stays fast.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes: 0 ok, 1 the thing checked failed (validation errors, job failed), 2 usage / unreadable
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


PIPED_WIDTH = 160  # when stdout is not a terminal, tables are this wide instead of rich's 80


def console(stderr: bool = False):
    """A rich console; on a pipe (CI logs, `| less`) wide enough that tables don't wrap ids."""
    import os

    from rich.console import Console

    con = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con.width = PIPED_WIDTH
    con.file = _Scrubbed(con.file)  # a backstop: nothing printed carries a known secret
    return con


class _Scrubbed:
    """A text stream whose writes pass through `redact_text` (everything else is delegated)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from ..redact import redact_text

        return self._stream.write(redact_text(text) or "")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def print_json(obj: Any) -> None:
    """Write JSON to stdout (pydantic models and dataclasses welcome)."""
    import orjson

    def default(o):
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        if hasattr(o, "to_dict"):
            return o.to_dict()
        if hasattr(o, "__dataclass_fields__"):
            import dataclasses

            return dataclasses.asdict(o)
        return str(o)

    try:
        text = orjson.dumps(obj, default=default, option=orjson.OPT_INDENT_2).decode()
    except TypeError:  # e.g. an integer beyond 64 bits: the standard library has no such limit
        import json

        text = json.dumps(obj, default=default, indent=2, ensure_ascii=False)
    from ..redact import redact_text

    sys.stdout.write((redact_text(text) or text) + "\n")
    sys.stdout.flush()


def fail(message: str, hint: str | None = None, code: int = EXIT_FAIL) -> "typer.Exit":
    """Print `error: message` (+ `hint: …`) on stderr, literally (a hint such as
    `pip install 'unitune[bedrock]'` must not be read as console markup), secrets scrubbed."""
    from rich.text import Text

    from ..redact import redact_text

    err = console(stderr=True)
    err.print(Text.assemble(("error:", "bold red"), " ", redact_text(message) or ""),
              highlight=False)
    if hint:
        err.print(Text.assemble(("hint:", "dim"), " ", redact_text(hint) or ""), highlight=False)
    return typer.Exit(code)


# optional dependencies by top-level module → the extra that installs them
_EXTRA_OF = {"openai": "openai", "boto3": "bedrock", "botocore": "bedrock", "google": "vertex",
             "torch": "local", "transformers": "local", "peft": "local", "trl": "local",
             "accelerate": "local", "datasets": "local", "bitsandbytes": "local",
             "matplotlib": "local", "sacrebleu": "eval", "rouge_score": "eval",
             "datasketch": "quality", "mlflow": "track", "tensorboard": "track",
             "gguf": "export", "liger_kernel": "gpu", "jsonschema": "testing"}


def _missing_module(exc: ModuleNotFoundError) -> tuple[str, str | None]:
    top = (exc.name or "").split(".")[0]
    extra = _EXTRA_OF.get(top)
    hint = f"pip install 'unitune[{extra}]'" if extra else f"pip install {top}" if top else None
    return f"{exc.name or 'a module'} is not installed", hint


def handle_errors(fn: F) -> F:
    """Decorator: UnituneError → message + hint on stderr and a non-zero exit, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import os

        from ..errors import MissingDependency, RegistryError, SpecError, UnituneError

        try:
            return fn(*args, **kwargs)
        except (SpecError, MissingDependency, RegistryError) as exc:
            raise fail(exc.message, exc.hint, EXIT_USAGE) from None
        except UnituneError as exc:
            raise fail(exc.message, exc.hint, EXIT_FAIL) from None
        except KeyboardInterrupt:
            raise fail("interrupted", None, 130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except ModuleNotFoundError as exc:
            message, hint = _missing_module(exc)
            raise fail(message, hint, EXIT_USAGE) from None
        except RecursionError:
            raise fail("input nested too deeply to process", "flatten the spec or data",
                       EXIT_USAGE) from None
        except Exception as exc:  # never a traceback for the user; UNITUNE_DEBUG=1 shows it
            if os.environ.get("UNITUNE_DEBUG"):
                raise
            raise fail(f"internal error: {type(exc).__name__}: {exc}",
                       "this is a bug in unitune; rerun with UNITUNE_DEBUG=1 for the traceback "
                       "and report it", EXIT_USAGE) from None

    return wrapper  # type: ignore[return-value]
