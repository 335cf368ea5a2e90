"""``imgsent distill``: run a recipe, or one stage of it. Needs ``pip install 'imgsent[distill]'``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgsent.cli.app import err

RecipeArg = Annotated[Path, typer.Argument(help="Recipe file (YAML or JSON).", exists=False)]
WorkdirOpt = Annotated[
    Optional[Path], typer.Option("--workdir", "-d", help="Folder for stage outputs. Default: runs/<recipe name>.")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a recipe value, e.g. --set train.epochs=1 (value parsed as YAML)."),
]

EPILOG = (
    "**Examples**\n\n"
    "    imgsent distill run recipes/default.yaml\n\n"
    "    imgsent distill run recipes/default.yaml --until label\n\n"
    "    imgsent distill stage train recipes/default.yaml --set train.epochs=1\n\n"
    "    torchrun --nproc_per_node 8 -m imgsent distill stage train recipe.yaml"
)


def distill_app() -> typer.Typer:
    """Build the ``distill`` sub-application."""
    sub = typer.Typer(help="Distil an image model from a text teacher (corpus -> ... -> model folder).",
                      no_args_is_help=True, pretty_exceptions_show_locals=False, rich_markup_mode="markdown")
    from imgsent.cli.app import _Command

    sub.command(cls=_Command, epilog=EPILOG)(run)
    sub.command(cls=_Command, epilog=EPILOG)(stage)
    return sub


def run(
    recipe: RecipeArg,
    workdir: WorkdirOpt = None,
    until: Annotated[Optional[str], typer.Option(help="Stop after this stage.")] = None,
    set_: SetOpt = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Also copy the exported model folder here.")] = None,
) -> None:
    """Run every stage of a recipe; finished stages with unchanged inputs are skipped."""
    _execute(recipe, workdir, set_, until=until, only=None, output=output)


def stage(
    name: Annotated[str, typer.Argument(help="ingest, dedup, label, select, train, evaluate or export.")],
    recipe: RecipeArg,
    workdir: WorkdirOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run one stage of a recipe (the stages before it must be done)."""
    _execute(recipe, workdir, set_, until=None, only=name, output=None)


def _execute(recipe_path: Path, workdir: Optional[Path], sets: Optional[list[str]], *, until: Optional[str],
             only: Optional[str], output: Optional[Path]) -> None:
    import os
    import shutil

    from imgsent.errors import require_extra

    require_extra("vaderSentiment", "distill")
    require_extra("yaml", "distill")
    from imgsent.distill.pipeline import DistillRun
    from imgsent.distill.recipe import load_recipe

    recipe = load_recipe(recipe_path, overrides=_parse_sets(sets or []))
    folder = workdir or Path("runs") / recipe.name
    rank0 = int(os.environ.get("RANK", "0")) == 0
    runner = DistillRun(recipe, folder, log=(lambda line: err.print(line, highlight=False)) if rank0 else None)
    results = runner.run(until=until, only=only)
    exported = [r for r in results if r.name == "export"]
    if exported and rank0:
        model_dir = exported[0].summary["model_dir"]
        if output is not None:
            shutil.copytree(model_dir, output, dirs_exist_ok=True)
            model_dir = str(output)
        typer.echo(model_dir)


def _parse_sets(items: list[str]) -> dict[str, object]:
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {item!r}.")
        out[key.strip()] = yaml.safe_load(value)
    return out
