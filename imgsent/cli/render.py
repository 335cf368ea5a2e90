"""Rich renderings shared by the commands."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from imgsent.evaluate import EvaluationReport


def render_metrics(report: EvaluationReport, console: Console) -> None:
    """Print accuracy, macro-F1 and the confusion matrix of each subset."""
    table = Table(title=f"binary protocol on {report.labels_file}")
    for column in ("subset", "n", "accuracy", "macro-F1", "neg->neg", "neg->pos", "pos->neg", "pos->pos"):
        table.add_column(column, justify="right")
    for m in report.subsets:
        c = m.confusion
        table.add_row(
            m.name, str(m.n), f"{100 * m.accuracy:.1f}%", f"{100 * m.macro_f1:.1f}%",
            str(c["negative"]["negative"]), str(c["negative"]["positive"]),
            str(c["positive"]["negative"]), str(c["positive"]["positive"]),
        )
    console.print(table)
    if report.errors:
        console.print(f"[yellow]{len(report.errors)} images could not be read[/]; first: {report.errors[0]}")
