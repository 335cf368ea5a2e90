"""``imgsent distill``: run a recipe, or one stage of it. Needs ``pip install 'imgsent[distill]'``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from imgsent.cli.common import err
from imgsent.errors import require_extra

if TYPE_CHECKING:
    from rich.progress import TaskID

    from imgsent.distill.records import EpochMetrics, StepProgress
    from imgsent.models.sentiment import SentimentModel

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
TRAIN_EPILOG = (
    "**Examples**\n\n"
    "    imgsent distill train --model model.json --train train.jsonl --val val.jsonl --out runs/student\n\n"
    "    torchrun --nproc_per_node 8 -m imgsent distill train --model model.json --train train.jsonl --out runs/student --resume"
)


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
    import shutil

    require_extra("vaderSentiment", "distill")
    require_extra("yaml", "distill")
    from imgsent.distill.recipe import load_recipe
    from imgsent.outputs import check_writable

    recipe = load_recipe(recipe_path, overrides=_parse_sets(sets or []))
    folder = check_writable(workdir or Path("runs") / recipe.name, kind="work folder", folder=True)
    if output is not None:
        check_writable(output, kind="model folder", folder=True)
    from imgsent.distill.distributed import process_rank
    from imgsent.distill.pipeline import DistillRun

    rank0 = process_rank() == 0
    with TrainingProgress(rank0=rank0) as shown:
        runner = DistillRun(recipe, folder, log=(lambda line: err.print(line, highlight=False)) if rank0 else None,
                            on_train_step=shown.step, on_train_epoch=shown.epoch)
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


def train(
    model: Annotated[Path, typer.Option("--model", help="Model folder to continue from, or a config.json to build a fresh student from.")],
    train_rows: Annotated[Path, typer.Option("--train", help="Training rows (JSONL), e.g. a selection's train.jsonl.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints/, best/, model/ and metrics.json.")],
    val_rows: Annotated[Optional[Path], typer.Option("--val", help="Validation rows (JSONL).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Training options (TrainConfig) as a JSON file.")] = None,
    imagenet: Annotated[bool, typer.Option("--imagenet", help="Initialise the backbone from ImageNet weights.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out.")] = False,
) -> None:
    """Train a student on labelled rows (no recipe); prints a JSON summary on stdout. Works under torchrun."""
    import json
    from dataclasses import asdict

    from imgsent.outputs import check_writable

    check_writable(out, kind="run folder", folder=True)  # before the imports of torch and the trainer
    from imgsent.distill.distributed import process_rank
    from imgsent.distill.records import TrainConfig, read_rows
    from imgsent.distill.trainer import train_student

    options = TrainConfig.from_dict(_read_json_file(config) if config else {})
    student = _load_student(model, seed=options.seed, imagenet=imagenet)
    val = read_rows(val_rows) if val_rows else []
    with TrainingProgress(rank0=process_rank() == 0) as shown:
        result = train_student(student, read_rows(train_rows), val, options, out, resume=resume,
                               on_step=shown.step, on_epoch=shown.epoch)
    if process_rank() == 0:
        typer.echo(json.dumps({"model_dir": str(result.model_dir), "steps": result.steps, "completed": result.completed,
                               "history": [asdict(m) for m in result.history]}))


def _read_json_file(path: Path) -> dict[str, object]:
    import json

    from imgsent.errors import InvalidConfigError

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidConfigError(f"{path} is not valid JSON: {exc}") from None


def _load_student(source: Path, *, seed: int, imagenet: bool) -> SentimentModel:
    import torch

    from imgsent.config import ModelConfig
    from imgsent.models.sentiment import SentimentModel

    if source.is_dir():
        student = SentimentModel.from_folder(source)
    else:
        torch.manual_seed(seed)  # every rank builds the same initial weights
        student = SentimentModel(ModelConfig.from_dict(_read_json_file(source)))
    if imagenet:
        from imgsent.distill.backbones import load_imagenet_backbone

        load_imagenet_backbone(student)
    return student


class TrainingProgress:
    """Rich progress bar for training on stderr (only on a terminal), plus one line per finished epoch."""

    def __init__(self, *, rank0: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=err, disable=not (rank0 and err.is_terminal))
        self.task: TaskID | None = None

    def __enter__(self) -> TrainingProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def step(self, p: StepProgress) -> None:
        """``on_step`` callback: move the bar to the step reported."""
        description = f"epoch {p.epoch + 1}/{p.total_epochs} ({p.phase}) loss {p.loss:.4f}"
        if self.task is None:
            self.task = self.bar.add_task(description, total=p.total_steps)
        self.bar.update(self.task, completed=p.step, description=description)

    def epoch(self, m: EpochMetrics) -> None:
        """``on_epoch`` callback: print the epoch's metrics."""
        parts = [f"train loss {m.train_loss:.4f}"]
        if m.val_accuracy is not None:
            parts += [f"val loss {m.val_loss:.4f}", f"val acc {m.val_accuracy:.3f}", f"balanced {m.val_balanced_accuracy:.3f}"]
        self.bar.console.print(f"epoch {m.epoch} ({m.phase}): {', '.join(parts)}", highlight=False)
