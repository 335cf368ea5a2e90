"""What every command shares: exit codes, the stderr console, the command and group classes and common options."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from imgsent.errors import InputNotFoundError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_MISSING_EXTRA = 4
EXIT_INTERRUPTED = 130
# What each code means is decided in app.py (errors) and documented in docs/reference/cli.md.

# soft_wrap: never break lines at 80 columns when stderr is a file or a pipe.
err = Console(stderr=True, soft_wrap=True, highlight=False)


def no_images_error(inputs: list[str], subfolders: int) -> InputNotFoundError:
    """The error for inputs that exist but hold no image file, with the hint that fits (exit 2)."""
    hint = (
        f" The input holds {subfolders} sub-folder(s): add --recursive to look inside them."
        if subfolders else " Image files need an image extension such as .jpg or .png."
    )
    return InputNotFoundError(f"0 images found in {', '.join(inputs)}.{hint}")


class Command(TyperCommand):
    """A command whose usage line reads ``PATHS...`` and whose plain flags show no ``<bool>``."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                name = name + "..." if param.nargs != 1 and not name.endswith("...") else name
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return bare_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A command group whose plain flags (``--help``) show no ``<bool>``."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return bare_flags(super().get_params(ctx))


def bare_flags(params: list[Any]) -> list[Any]:
    """Plain flags take no value, so their help shows no type."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model: a known name, a local folder or a Hub repo id. Default: the bundled model."),
]
RevisionOpt = Annotated[Optional[str], typer.Option(help="Hub branch, tag or commit sha to pin.")]
BackendOpt = Annotated[
    str,
    typer.Option(help="auto (fastest exact engine installed), torch, onnxruntime or openvino (pip install 'imgsent[cpu]')."),
]
