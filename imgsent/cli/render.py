"""Rich renderings shared by the commands."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from imgsent.evaluate import EvaluationReport

_SHORT = {"negative": "neg", "neutral": "neu", "positive": "pos"}


def render_metrics(report: EvaluationReport, console: Console) -> None:
    """Print accuracy and macro-F1 per subset (``n/a`` where no image was scored), then the confusion matrix of ``all``."""
    skipped = f"; {report.skipped_neutral} neutral rows skipped" if report.skipped_neutral else ""
    table = Table(title=f"{report.protocol} protocol on {escape(report.labels_file)}{skipped}", title_justify="left")
    for column in ("subset", "n", "accuracy", "macro-F1"):
        table.add_column(column, justify="right", no_wrap=True)
    for m in report.subsets:
        table.add_row(m.name, str(m.n), _percent(m.accuracy), _percent(m.macro_f1))
    console.print(table)
    if report.scored:
        matrix = Table(title="confusion (all): rows true, columns predicted", title_justify="left")
        matrix.add_column("true", no_wrap=True)
        for cls in report.classes:
            matrix.add_column(_SHORT[cls], justify="right", no_wrap=True)
        confusion = report.subsets[0].confusion
        for truth in report.classes:
            matrix.add_row(truth, *(str(confusion[truth][pred]) for pred in report.classes))
        console.print(matrix)
    if report.errors:
        console.print(f"[yellow]{len(report.errors)} images could not be read[/]; first: {escape(report.errors[0])}")


def _percent(value: float | None) -> str:
    """A metric in percent, or ``n/a`` when nothing was measured."""
    return "n/a" if value is None else f"{100 * value:.1f}%"
