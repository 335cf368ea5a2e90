"""Corpus format readers: imgsent JSONL, Twitter API v2 responses and CSV.

Each reader yields one raw record per post (a dict with ``id``, ``text``, ``images``, ``lang``
and ``refs``), or the reason string of a post it could not read, and counts posts seen in
``report.read``. Filtering happens in :mod:`imgsent.distill.corpus.reader`.

Lines are split on ``"\\n"`` only: real tweet text holds U+2028 and other characters
that :meth:`str.splitlines` would treat as line breaks.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from imgsent.distill.corpus.records import CorpusReport
from imgsent.errors import CorpusError

RawRecord = dict[str, Any]
"""``{"id", "text", "images", "lang", "refs"}`` as found in the file, before any check."""


def json_values(path: Path) -> Iterator[Any]:
    """Yield parsed JSON values: one per line, or the whole file when it is one document."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16).lstrip()
            fh.seek(0)
            whole = head.startswith(b"[") or (head.startswith(b"{") and not _parses(head.split(b"\n", 1)[0]))
            if not whole:
                for line in fh:  # binary iteration splits on b"\n" only
                    if line.strip():
                        yield _parse_line(line)
                return
            data = fh.read()
    except OSError as exc:
        raise CorpusError(f"Cannot read corpus file {str(path)!r}: {exc}") from None
    try:
        values = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(
            f"{str(path)!r} is neither one JSON object per line nor a single JSON document: {exc}."
        ) from None
    yield from values if isinstance(values, list) else [values]

def read_jsonl(path: Path, report: CorpusReport) -> Iterator[RawRecord | str]:
    """imgsent JSONL: one ``{id, text, images, lang}`` object per line (or one JSON document)."""
    for value in json_values(path):
        if value is _BAD_JSON:
            report.read += 1
            yield "bad_json"
            continue
        if not isinstance(value, dict):
            report.read += 1
            yield "bad_record"
            continue
        report.read += 1
        images = value.get("images")
        if isinstance(images, str):
            images = [images]
        yield {
            "id": value.get("id"),
            "text": value.get("text"),
            "images": images,
            "lang": value.get("lang"),
            "refs": value.get("referenced_tweets"),
        }

def read_twitter(path: Path, report: CorpusReport) -> Iterator[RawRecord | str]:
    """Twitter API v2 responses: one per line, a JSON array of them, or one; bare tweets too."""
    for value in json_values(path):
        if value is _BAD_JSON or not isinstance(value, dict):
            report.read += 1
            yield "bad_json" if value is _BAD_JSON else "bad_record"
            continue
        yield from _twitter_response(value, report)

def _twitter_response(response: dict[str, Any], report: CorpusReport) -> Iterator[RawRecord | str]:
    includes = response.get("includes") if isinstance(response.get("includes"), dict) else {}
    media: dict[str, Any] = {}
    for item in includes.get("media") or []:
        if isinstance(item, dict) and isinstance(item.get("media_key"), str):
            media[item["media_key"]] = item
    tweets = response.get("data", [])
    if "data" not in response and "text" in response:  # a bare tweet object per line
        tweets = response
    for tweet in [tweets] if isinstance(tweets, dict) else tweets if isinstance(tweets, list) else [None]:
        report.read += 1
        if not isinstance(tweet, dict):
            yield "bad_record"
            continue
        note = tweet.get("note_tweet")
        text = note.get("text") if isinstance(note, dict) and note.get("text") else tweet.get("text")
        attachments = tweet.get("attachments") if isinstance(tweet.get("attachments"), dict) else {}
        images: list[Any] = []
        for key in attachments.get("media_keys") or []:
            item = media.get(key) if isinstance(key, str) else None
            if item is None:
                report.images_dropped["unknown_media_key"] += 1
            elif item.get("type", "photo") != "photo" or not item.get("url"):
                report.images_dropped["not_photo"] += 1
            else:
                images.append(item["url"])
        yield {
            "id": tweet.get("id"),
            "text": text,
            "images": images,
            "lang": tweet.get("lang"),
            "refs": tweet.get("referenced_tweets"),
        }

def read_csv(path: Path, report: CorpusReport) -> Iterator[RawRecord | str]:
    """CSV with a header of at least ``id,text,image`` (optional ``lang``), one image per row."""
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CorpusError(f"Cannot read corpus file {str(path)!r}: {exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        try:
            columns = set(reader.fieldnames or [])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CorpusError(f"{str(path)!r} is not a readable CSV file: {exc}") from None
        missing = {"id", "text", "image"} - columns
        if missing:
            raise CorpusError(
                f"CSV corpus {str(path)!r} lacks the column(s) {sorted(missing)}; "
                f"its header is {sorted(columns)}. Expected a header 'id,text,image' (optional 'lang')."
            )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError):
                report.read += 1
                yield "bad_record"
                continue
            report.read += 1
            if None in row:  # more fields than the header
                yield "bad_record"
                continue
            image = row.get("image")
            yield {"id": row.get("id"), "text": row.get("text"), "images": [image] if image else [],
                   "lang": row.get("lang") or None, "refs": None}


_BAD_JSON = object()


def _parse_line(line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _BAD_JSON


def _parses(line: bytes) -> bool:
    return _parse_line(line) is not _BAD_JSON


def sniff_format(path: Path) -> str:
    """``"csv"`` by extension; otherwise ``"twitter"`` when the first record has ``data``/``includes``, else ``"jsonl"``."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix not in (".jsonl", ".json", ".ndjson", ".txt", ""):
        raise CorpusError(
            f"Cannot tell the format of {str(path)!r} from its extension {suffix!r}; "
            "pass format='jsonl', 'twitter' or 'csv'."
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise CorpusError(f"Cannot read corpus file {str(path)!r}: {exc}") from None
    # Look for a top-level "data" key in the first record without parsing the whole file.
    first = head.lstrip().lstrip(b"[").lstrip()
    line = first.split(b"\n", 1)[0]
    try:
        value = json.loads(line.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return "twitter" if "data" in value or "includes" in value else "jsonl"
    return "twitter" if re.search(rb'"data"\s*:', first[:4096]) else "jsonl"


READERS: dict[str, Callable[[Path, CorpusReport], Iterator[RawRecord | str]]] = {
    "jsonl": read_jsonl,
    "twitter": read_twitter,
    "csv": read_csv,
}
