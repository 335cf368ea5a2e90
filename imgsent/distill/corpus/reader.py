"""Read a corpus file into kept :class:`Post` records: the paper's filters and image path checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from imgsent.distill.corpus.formats import READERS, RawRecord, sniff_format
from imgsent.distill.corpus.records import DEFAULT_MIN_WORDS, CorpusReport, Post, normalize_text
from imgsent.errors import CorpusError

CorpusFormat = Literal["auto", "jsonl", "twitter", "csv"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "twitter", "csv")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_REFERENCE_REASONS = {"retweeted": "retweet", "quoted": "quote", "replied_to": "reply"}


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
        for raw in READERS[self.format](self.path, self.report):
            post = self._accept(raw, seen)
            if post is not None:
                self.report.kept += 1
                self.report.images_kept += len(post.images)
                yield post

    # ---- filters
    def _accept(self, raw: RawRecord | str, seen: set[str]) -> Post | None:
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
    fmt = format if format != "auto" else sniff_format(path)
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
