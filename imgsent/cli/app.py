"""``imgsent``: the Typer application and the one place where errors become exit codes.

Each command validates its arguments, calls one library function and renders the result.
Progress and summaries go to stderr; stdout carries only machine-readable output. Commands
let :class:`~imgsent.errors.ImgsentError` propagate; :func:`exit_code` maps it to an exit code.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from imgsent.errors import ImgsentError, InputNotFoundError, ResumeMismatchError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

# Errors about what the user typed, found before any work: exit 2, like a bad option.
USAGE_ERRORS: tuple[type[ImgsentError], ...] = (InputNotFoundError, ResumeMismatchError)

# soft_wrap: never break lines at 80 columns when stderr is a file or a pipe.
err = Console(stderr=True, soft_wrap=True, highlight=False)


def exit_code(exc: ImgsentError) -> int:
    """The exit code of an error: 2 for usage errors, 1 for everything else."""
    return EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE


class _Command(TyperCommand):
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
        return _bare_flags(super().get_params(ctx))


def _bare_flags(params: list[Any]) -> list[Any]:
    """Plain flags take no value, so their help shows no type."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    """The top-level group: maps every imgsent error to a message and an exit code, once."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _bare_flags(super().get_params(ctx))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImgsentError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    name="imgsent",
    cls=_Group,
    help="Image sentiment polarity (negative / neutral / positive) from pixels alone.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model: a known name, a local folder or a Hub repo id. Default: the bundled model."),
]
RevisionOpt = Annotated[Optional[str], typer.Option(help="Hub branch, tag or commit sha to pin.")]


def _version(value: bool) -> None:
    if value:
        import imgsent

        typer.echo(f"imgsent {imgsent.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Image sentiment polarity (negative / neutral / positive) from pixels alone."""


def _register() -> None:
    from imgsent.cli import classify, evaluate, hub
    from imgsent.cli.distill import distill_app

    app.command(cls=_Command, epilog=classify.EPILOG)(classify.classify)
    app.command(cls=_Command)(hub.models)
    app.command(cls=_Command, epilog=hub.DOWNLOAD_EPILOG)(hub.download)
    app.command(cls=_Command, epilog=evaluate.EPILOG)(evaluate.evaluate)
    app.add_typer(distill_app(), name="distill")


def main() -> None:
    """Console-script entry point."""
    app()


_register()
