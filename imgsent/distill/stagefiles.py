"""The files a pipeline stage hands to the next: posts as JSON lines, written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any


def _write_lines(path: Path, rows: Any) -> None:
    with open(path.with_suffix(".tmp"), "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(path.with_suffix(".tmp"), path)


def _write_posts(path: Path, posts: Any) -> int:
    tmp = path.with_suffix(".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for post in posts:
            handle.write(json.dumps(asdict(post), ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _read_posts(path: Path) -> Iterator[Any]:
    from imgsent.distill.corpus import Post

    with open(path, encoding="utf-8", newline="\n") as handle:
        for line in handle:
            if line.strip():
                data = json.loads(line)
                yield Post(data["id"], data["text"], tuple(data["images"]), data.get("lang"))


__all__: list[str] = []
