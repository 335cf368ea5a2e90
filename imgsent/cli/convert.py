"""``imgsent convert keras``: the authors' Keras ``.h5`` students to imgsent model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EPILOG = (
    "**Examples**\n\n"
    "    imgsent convert keras ViT_B32.h5 --output paper-vit-b32\n\n"
    "    imgsent convert keras my_student.h5 --output my-student --preset vit-l16"
)


def keras(
    file: Annotated[Path, typer.Argument(help="Keras .h5 file, saved with model.save() or save_weights().")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write; must not exist or be empty.")],
    preset: Annotated[
        Optional[str],
        typer.Option(help="vit-b32, vit-b16, vit-l32 or vit-l16. Default: inferred from the file name or shapes."),
    ] = None,
) -> None:
    """Convert one of the paper's Keras ViT students (.h5) into a model folder (config.json + model.safetensors).

    The file is read with h5py; TensorFlow is not needed and nothing is unpickled. Prints the folder.
    """
    from imgsent.outputs import check_writable

    output = check_writable(output, kind="model folder", folder=True)
    from imgsent.convert import convert_keras

    folder = convert_keras(file, output, preset=preset)
    typer.echo(str(folder))
