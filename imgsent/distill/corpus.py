"""Read a multimodal corpus (text + images) into :class:`Post` records.

Three input formats are understood:

* ``"jsonl"``: imgsent JSONL, one object per line:
  ``{"id": str, "text": str, "images": [path or URL, ...], "lang": str (optional)}``.
  An optional ``"referenced_tweets"`` list (Twitter API v2 shape) enables the
  retweet / quote / reply filter.
* ``"twitter"``: Twitter API v2 responses as collectors save them: one response per line,
  a JSON array of responses, or a single response. Tweets come from ``data``, photo URLs
  from ``includes.media`` (matched by ``attachments.media_keys``).
* ``"csv"``: a header row with at least ``id,text,image`` (optionally ``lang``), one image per row.

The paper's filters are applied: language, originality (no retweets, quotes or
replies, where the record says so), a minimum word count and at least one usable image.
Text is normalised as the teacher expects: ``@mentions`` become ``@user`` and links
become ``http``. Bad rows are counted in :class:`CorpusReport`, never raised; only a file
that cannot be read at all raises :class:`~imgsent.errors.CorpusError`.

Lines are split on ``"\\n"`` only: real tweet text holds U+2028 and other characters
that :meth:`str.splitlines` would treat as line breaks.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imgsent.errors import CorpusError

CorpusFormat = Literal["auto", "jsonl", "twitter", "csv"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "twitter", "csv")
DEFAULT_MIN_WORDS = 6
"""Keep posts with at least this many words, i.e. "more than 5 words" as in the paper."""

_MENTION = re.compile(r"(?<![\w@])@\w+")
_LINK = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_REFERENCE_REASONS = {"retweeted": "retweet", "quoted": "quote", "replied_to": "reply"}


@dataclass(frozen=True)
class Post:
    """One post: normalised text and the images its label applies to.

    Args:
        id: Unique post id (string).
        text: Normalised text (``@user``, ``http`` placeholders).
        images: Absolute local paths (resolved inside the corpus root) or ``http(s)`` URLs.
        lang: Language code from the record, or ``None`` when the record has none.
    """

    id: str
    text: str
    images: tuple[str, ...]
    lang: str | None = None


@dataclass
class CorpusReport:
    """Counts gathered while reading a corpus.

    Attributes:
        path: The corpus file.
        format: The format actually read (never ``"auto"``).
        read: Posts (rows, tweets) seen, including bad ones.
        kept: Posts yielded.
        images_kept: Image references in the kept posts.
        dropped: Posts dropped, by reason: ``bad_json``, ``bad_record``, ``duplicate_id``,
            ``empty_text``, ``language``, ``retweet``, ``quote``, ``reply``, ``too_few_words``, ``no_image``.
        images_dropped: Image references refused, by reason: ``path_escape``, ``missing_file``,
            ``bad_scheme``, ``bad_path``, ``not_photo``, ``unknown_media_key``.
        no_lang: Kept posts whose record has no language field (the language filter could not apply).
    """

    path: str
    format: str
    read: int = 0
    kept: int = 0
    images_kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    images_dropped: Counter[str] = field(default_factory=Counter)
    no_lang: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "path": self.path,
            "format": self.format,
            "read": self.read,
            "kept": self.kept,
            "images_kept": self.images_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "images_dropped": dict(sorted(self.images_dropped.items())),
            "no_lang": self.no_lang,
        }


def normalize_text(text: str) -> str:
    """Replace ``@mentions`` with ``@user`` and links with ``http``, as the teacher was trained.

    Example:
        >>> normalize_text("hi @bob see https://t.co/x")
        'hi @user see http'
    """
    return _LINK.sub("http", _MENTION.sub("@user", text))


class CorpusReader:
    """An iterable over the kept :class:`Post` records of one corpus file.

    Each iteration re-reads the file and refills :attr:`report`; read the report after
    the loop. Build it with :func:`read_corpus`.
    """

    def __init__(
        self,
        path: Path,
        fmt: str,
        *,
        lang: str | None,
        min_words: int,
        drop_references: bool,
        image_root: Path,
        check_files: bool,
        normalize: bool,
    ) -> None:
        self.path = path
        self.format = fmt
        self._lang = lang.lower() if lang else None
        self._min_words = min_words
        self._drop_references = drop_references
        self._root = image_root
        self._check_files = check_files
        self._normalize = normalize
        self.report = CorpusReport(str(path), fmt)

    def __iter__(self) -> Iterator[Post]:
        self.report = CorpusReport(str(self.path), self.format)
        seen: set[str] = set()
        raw_iter = {"jsonl": self._jsonl, "twitter": self._twitter, "csv": self._csv}[self.format]
        for raw in raw_iter():
            post = self._accept(raw, seen)
            if post is not None:
                self.report.kept += 1
                self.report.images_kept += len(post.images)
                yield post

    # ---- format readers: yield dicts {id, text, images, lang, refs} or a drop reason string
    def _json_values(self) -> Iterator[Any]:
        """Yield parsed JSON values: one per line, or the whole file when it is one document."""
        try:
            with open(self.path, "rb") as fh:
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
            raise CorpusError(f"Cannot read corpus file {str(self.path)!r}: {exc}") from None
        try:
            values = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorpusError(
                f"{str(self.path)!r} is neither one JSON object per line nor a single JSON document: {exc}."
            ) from None
        yield from values if isinstance(values, list) else [values]

    def _jsonl(self) -> Iterator[dict[str, Any] | str]:
        for value in self._json_values():
            if value is _BAD_JSON:
                self.report.read += 1
                yield "bad_json"
                continue
            if not isinstance(value, dict):
                self.report.read += 1
                yield "bad_record"
                continue
            self.report.read += 1
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

    def _twitter(self) -> Iterator[dict[str, Any] | str]:
        for value in self._json_values():
            if value is _BAD_JSON or not isinstance(value, dict):
                self.report.read += 1
                yield "bad_json" if value is _BAD_JSON else "bad_record"
                continue
            yield from self._twitter_response(value)

    def _twitter_response(self, response: dict[str, Any]) -> Iterator[dict[str, Any] | str]:
        includes = response.get("includes") if isinstance(response.get("includes"), dict) else {}
        media: dict[str, Any] = {}
        for item in includes.get("media") or []:
            if isinstance(item, dict) and isinstance(item.get("media_key"), str):
                media[item["media_key"]] = item
        tweets = response.get("data", [])
        if "data" not in response and "text" in response:  # a bare tweet object per line
            tweets = response
        for tweet in [tweets] if isinstance(tweets, dict) else tweets if isinstance(tweets, list) else [None]:
            self.report.read += 1
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
                    self.report.images_dropped["unknown_media_key"] += 1
                elif item.get("type", "photo") != "photo" or not item.get("url"):
                    self.report.images_dropped["not_photo"] += 1
                else:
                    images.append(item["url"])
            yield {
                "id": tweet.get("id"),
                "text": text,
                "images": images,
                "lang": tweet.get("lang"),
                "refs": tweet.get("referenced_tweets"),
            }

    def _csv(self) -> Iterator[dict[str, Any] | str]:
        try:
            fh = open(self.path, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise CorpusError(f"Cannot read corpus file {str(self.path)!r}: {exc}") from None
        with fh:
            reader = csv.DictReader(fh)
            try:
                columns = set(reader.fieldnames or [])
            except (csv.Error, UnicodeDecodeError) as exc:
                raise CorpusError(f"{str(self.path)!r} is not a readable CSV file: {exc}") from None
            missing = {"id", "text", "image"} - columns
            if missing:
                raise CorpusError(
                    f"CSV corpus {str(self.path)!r} lacks the column(s) {sorted(missing)}; "
                    f"its header is {sorted(columns)}. Expected a header 'id,text,image' (optional 'lang')."
                )
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError):
                    self.report.read += 1
                    yield "bad_record"
                    continue
                self.report.read += 1
                if None in row:  # more fields than the header
                    yield "bad_record"
                    continue
                image = row.get("image")
                yield {"id": row.get("id"), "text": row.get("text"), "images": [image] if image else [],
                       "lang": row.get("lang") or None, "refs": None}

    # ---- filters
    def _accept(self, raw: dict[str, Any] | str, seen: set[str]) -> Post | None:
        report = self.report
        if isinstance(raw, str):
            report.dropped[raw] += 1
            return None
        post_id, text, images = raw["id"], raw["text"], raw["images"]
        if isinstance(post_id, int) and not isinstance(post_id, bool):
            post_id = str(post_id)
        if not isinstance(post_id, str) or not post_id.strip() or not isinstance(text, str) or not (
            images is None or isinstance(images, list)
        ):
            report.dropped["bad_record"] += 1
            return None
        if post_id in seen:
            report.dropped["duplicate_id"] += 1
            return None
        seen.add(post_id)
        if not text.strip():
            report.dropped["empty_text"] += 1
            return None
        lang = raw["lang"] if isinstance(raw["lang"], str) and raw["lang"] else None
        if self._lang is not None and lang is not None and lang.lower() != self._lang:
            report.dropped["language"] += 1
            return None
        if self._drop_references and isinstance(raw["refs"], list):
            for ref in raw["refs"]:
                reason = _REFERENCE_REASONS.get(ref.get("type")) if isinstance(ref, dict) else None
                if reason:
                    report.dropped[reason] += 1
                    return None
        if self._normalize:
            text = normalize_text(text)
        if len(text.split()) < self._min_words:
            report.dropped["too_few_words"] += 1
            return None
        kept = tuple(p for p in (self._resolve_image(i) for i in images or []) if p is not None)
        if not kept:
            report.dropped["no_image"] += 1
            return None
        if lang is None:
            report.no_lang += 1
        return Post(id=post_id, text=text, images=kept, lang=lang)

    def _resolve_image(self, ref: Any) -> str | None:
        if not isinstance(ref, str) or not ref.strip() or "\x00" in ref:
            self.report.images_dropped["bad_path"] += 1
            return None
        ref = ref.strip()
        scheme = _URL_SCHEME.match(ref)
        if scheme and len(scheme.group(1)) > 1:  # one letter is a Windows drive
            if scheme.group(1).lower() in ("http", "https"):
                return ref
            self.report.images_dropped["bad_scheme"] += 1
            return None
        try:
            resolved = (self._root / ref).resolve()
        except (OSError, RuntimeError, ValueError):
            self.report.images_dropped["bad_path"] += 1
            return None
        if not resolved.is_relative_to(self._root):
            self.report.images_dropped["path_escape"] += 1
            return None
        if self._check_files and not resolved.is_file():
            self.report.images_dropped["missing_file"] += 1
            return None
        return str(resolved)


_BAD_JSON = object()


def _parse_line(line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _BAD_JSON


def _parses(line: bytes) -> bool:
    return _parse_line(line) is not _BAD_JSON


def read_corpus(
    path: str | Path,
    *,
    format: CorpusFormat = "auto",
    lang: str | None = "en",
    min_words: int = DEFAULT_MIN_WORDS,
    drop_references: bool = True,
    image_root: str | Path | None = None,
    check_files: bool = True,
    normalize: bool = True,
) -> CorpusReader:
    """Open a corpus file and return an iterable of its kept posts, with a report.

    Args:
        path: The corpus file (``.jsonl``/``.json``/``.ndjson`` or ``.csv``).
        format: ``"auto"`` (default) picks ``"csv"`` by extension, otherwise looks at the first
            record: a ``data`` key means ``"twitter"``, else ``"jsonl"``.
        lang: Keep only posts in this language (default ``"en"``, as in the paper); ``None``
            keeps all. Posts whose record has no language (e.g. the shared caption corpus)
            are kept and counted in ``report.no_lang``.
        min_words: Minimum number of whitespace-separated words after normalisation.
            Default 6, i.e. the paper's "more than 5 words".
        drop_references: Drop retweets, quotes and replies where the record says so
            (``referenced_tweets``). Default ``True``.
        image_root: Folder local image paths are resolved against and must stay inside.
            Default: the corpus file's folder. Symlinks are followed before the check.
        check_files: Drop local image paths that are not existing files. Default ``True``.
        normalize: Apply :func:`normalize_text`. Default ``True``.

    Returns:
        A :class:`CorpusReader`: iterate it for :class:`Post` records, then read ``.report``.

    Raises:
        CorpusError: The file is missing or unreadable, or its format is unknown.

    Example:
        >>> reader = read_corpus("corpus.jsonl")  # doctest: +SKIP
        >>> posts = list(reader); reader.report.kept, dict(reader.report.dropped)  # doctest: +SKIP
        (748, {'too_few_words': 2})
    """
    path = Path(path)
    if format not in FORMATS:
        raise CorpusError(f"Unknown corpus format {format!r}; choose one of {list(FORMATS)}.")
    if not path.is_file():
        raise CorpusError(f"Corpus file not found: {str(path)!r}. Pass the path of a .jsonl, .json or .csv file.")
    if not isinstance(min_words, int) or min_words < 0:
        raise CorpusError(f"min_words must be a non-negative integer, got {min_words!r}.")
    fmt = format if format != "auto" else _sniff_format(path)
    root = Path(image_root) if image_root is not None else path.parent
    return CorpusReader(
        path,
        fmt,
        lang=lang,
        min_words=min_words,
        drop_references=drop_references,
        image_root=root.resolve(),
        check_files=check_files,
        normalize=normalize,
    )


def _sniff_format(path: Path) -> str:
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


__all__ = ["DEFAULT_MIN_WORDS", "CorpusFormat", "CorpusReader", "CorpusReport", "Post", "normalize_text", "read_corpus"]
