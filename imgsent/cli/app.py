"""``imgsent``: the Typer application and the one place where errors become exit codes.

Each command validates its arguments, calls one library function and renders the result.
Progress and summaries go to stderr; stdout carries only machine-readable output. Commands
let :class:`~imgsent.errors.ImgsentError` propagate; :func:`exit_code` maps it to an exit code.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from imgsent.cli.common import EXIT_INTERRUPTED, Command, bare_flags, err, exit_code
from imgsent.errors import ImgsentError


class _Group(TyperGroup):
    """The top-level group: maps every imgsent error to a message and an exit code, once."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return bare_flags(super().get_params(ctx))

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
    from imgsent.cli import cache, classify, convert, evaluate, hub, merge, report
    from imgsent.cli.distill import distill_app
    from imgsent.cli.export import export_app

    app.command(cls=Command, epilog=classify.EPILOG)(classify.classify)
    app.command(cls=Command, epilog=merge.EPILOG)(merge.merge)
    app.command(cls=Command)(hub.models)
    app.command(cls=Command, epilog=hub.DOWNLOAD_EPILOG)(hub.download)
    app.command(cls=Command, epilog=evaluate.EPILOG)(evaluate.evaluate)
    app.command(cls=Command, epilog=report.REPORT_EPILOG)(report.report)
    app.command(cls=Command, epilog=report.EXPLAIN_EPILOG)(report.explain)
    app.add_typer(distill_app(), name="distill")
    app.add_typer(export_app, name="export")
    app.add_typer(convert.convert_app(), name="convert")
    app.add_typer(cache.cache_app, name="cache")


def main() -> None:
    """Console-script entry point."""
    app()


_register()
