"""MkDocs hook: the home page's gallery and the site's version, computed when the site is built.

* ``on_config`` puts the installed imgsent version in the footer of every page.
* ``on_files`` publishes the example images under ``assets/gallery/``.
* ``on_page_markdown`` replaces ``<!-- imgsent-gallery -->`` in ``index.md`` with a table of
  the example images and what the default model predicts for them, so the page cannot drift
  from the model that ships in the package.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

MARKER = "<!-- imgsent-gallery -->"
VERSION_MARKER = "<!-- imgsent-version -->"
IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"
DEST = "assets/gallery"

log = logging.getLogger("mkdocs.plugins.imgsent_gallery")


def _images() -> list[Path]:
    return sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def on_config(config: Any) -> Any:
    import imgsent

    config.copyright = f"imgsent {imgsent.__version__} · Apache-2.0"
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for image in _images():
        files.append(File.generated(config, f"{DEST}/{image.name}", abs_src_path=str(image)))
    return files


def gallery_markdown() -> str:
    """The gallery table: one column per example image, with its label and three probabilities."""
    from imgsent import Predictor

    predictor = Predictor.from_pretrained(device="cpu", dtype="float32")
    predictions = predictor.predict([str(p) for p in _images()], workers=0)
    images = _images()
    cells = [
        f'![{image.stem}]({DEST}/{image.name}){{ width="80" loading="lazy" }}' for image in images
    ]
    labels = [f"**{p.label}**" if p.ok else f"error: {p.error}" for p in predictions]
    lines = [
        f"What the default model (`{predictor!r}`) predicts for the example images, computed when this page was built:",
        "",
        "| | " + " | ".join(cells) + " |",
        "|---|" + ":---:|" * len(images),
        "| **label** | " + " | ".join(labels) + " |",
    ]
    for name in ("negative", "neutral", "positive"):
        values = [f"{getattr(p, name):.3f}" if p.ok else "" for p in predictions]
        lines.append(f"| p({name}) | " + " | ".join(values) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    import imgsent

    if VERSION_MARKER in markdown:
        markdown = markdown.replace(VERSION_MARKER, imgsent.__version__)
    if page.file.src_uri != "index.md" or MARKER not in markdown:
        return markdown
    log.info("imgsent gallery: predicting %d example images", len(_images()))
    return markdown.replace(MARKER, gallery_markdown())


if __name__ == "__main__":
    print(gallery_markdown())
