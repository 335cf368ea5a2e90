"""``imgsent``: the Typer application, the one table of commands, and the one place where errors become exit codes.

Each command validates its arguments, calls one library function and renders the result.
Progress and summaries go to stderr; stdout carries only machine-readable output. Commands
let :class:`~imgsent.errors.ImgsentError` propagate; :func:`exit_code` maps it to an exit code
and the error is printed on one line, once, with no traceback. The codes are documented in
``docs/reference/cli.md``.

Command modules import nothing heavy at module level (no torch), so ``imgsent --help``,
``--version`` and ``models`` answer at once.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from imgsent.cli.common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_MISSING_EXTRA,
    EXIT_USAGE,
    Command,
    Group,
    err,
)
from imgsent.errors import (
    ImgsentError,
    InputNotFoundError,
    MissingExtraError,
    OutputExistsError,
    OutputFormatError,
    OutputNotWritableError,
    ResumeMismatchError,
)

EXIT_CODES: tuple[tuple[type[ImgsentError], int], ...] = (
    # Found before any work, about what the user typed: exit 2, like a bad option.
    (InputNotFoundError, EXIT_USAGE),
    (OutputNotWritableError, EXIT_USAGE),
    (ResumeMismatchError, EXIT_USAGE),
    (OutputExistsError, EXIT_USAGE),
    (OutputFormatError, EXIT_USAGE),
    # An optional package is missing: the message names the pip extra.
    (MissingExtraError, EXIT_MISSING_EXTRA),
)
"""Error types and their exit codes, first match wins; any other imgsent error exits 1."""


def exit_code(exc: BaseException) -> int:
    """The exit code of an error raised by a command (see :data:`EXIT_CODES`)."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), EXIT_FAILURE)


class _Group(Group):
    """The top-level group: maps every imgsent error (and any file-system error) to one line and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ImgsentError, OSError) as exc:  # OSError: a disk that fills up or a file that vanishes mid-run
            err.print(f"[bold red]error:[/] {escape(str(exc))}")  # escape: "imgsent[explain]" is not markup
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
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every group and command
)


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


GROUPS: dict[str, str] = {
    "export": "Export a model for deployment outside Python.",
    "convert": "Convert foreign checkpoints into imgsent model folders.",
    "distill": "Distil an image model from a text teacher (corpus -> ... -> model folder).",
    "cache": "The engine cache: models exported for OpenVINO and ONNX Runtime, made on first use.",
}
"""Command groups and their help."""


def _register() -> None:
    """Register every command, from one table: (group or None, function, epilog)."""
    from imgsent.cli import cache, classify, convert, distill, evaluate, explain, export, hub, merge, report

    commands: list[tuple[str | None, Any, str | None]] = [
        (None, classify.classify, classify.EPILOG),
        (None, merge.merge, merge.EPILOG),
        (None, hub.models, None),
        (None, hub.download, hub.DOWNLOAD_EPILOG),
        (None, evaluate.evaluate, evaluate.EPILOG),
        (None, report.report, report.EPILOG),
        (None, explain.explain, explain.EPILOG),
        ("distill", distill.run, distill.EPILOG),
        ("distill", distill.stage, distill.EPILOG),
        ("distill", distill.train, distill.TRAIN_EPILOG),
        ("export", export.onnx, export.EPILOG),
        ("convert", convert.keras, convert.EPILOG),
        ("cache", cache.info, cache.EPILOG),
        ("cache", cache.clear, cache.EPILOG),
    ]
    groups = {
        name: typer.Typer(cls=Group, help=text, no_args_is_help=True, rich_markup_mode="markdown",
                          pretty_exceptions_show_locals=False)
        for name, text in GROUPS.items()
    }
    for group, function, epilog in commands:
        (app if group is None else groups[group]).command(cls=Command, epilog=epilog)(function)
    for name, sub in groups.items():
        app.add_typer(sub, name=name)


def main() -> None:
    """Console-script entry point."""
    app()


_register()
