"""``imgsent export``: write a model in a format for deployment outside Python."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgsent.cli.common import RevisionOpt, err

EPILOG = (
    "**Examples**\n\n"
    "    imgsent export onnx default --output imgsent.onnx\n\n"
    "    imgsent export onnx ./my-model -o my-model.onnx"
)


def onnx(
    model: Annotated[str, typer.Argument(help="Model: 'default', a known name, a folder or a Hub repo id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")],
    revision: RevisionOpt = None,
    opset: Annotated[int, typer.Option(min=13, help="ONNX opset version.")] = 17,
) -> None:
    """Export to ONNX: input 'pixels' float32 [batch, 3, S, S], output 'probabilities' [batch, 3].

    The batch size is dynamic. The preprocessing (image size, resize mode, filter, mean, std) and
    the labels are stored in the file's metadata under 'imgsent.*' keys.
    """
    from imgsent.outputs import check_writable

    output = check_writable(output, kind="ONNX file")
    from imgsent.engines import export_onnx
    from imgsent.models.sentiment import SentimentModel

    loaded = SentimentModel.from_pretrained(None if model == "default" else model, revision=revision)
    path = export_onnx(loaded, output, opset=opset)
    err.print(f"exported {loaded.config.architecture.name} -> {path} ({path.stat().st_size / 1e6:.1f} MB)", markup=False)

