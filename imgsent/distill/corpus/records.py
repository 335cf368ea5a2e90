"""Corpus records: a kept :class:`Post`, the :class:`CorpusReport` of a read, and text normalisation."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MIN_WORDS = 6
"""Keep posts with at least this many words, i.e. "more than 5 words" as in the paper."""

_MENTION = re.compile(r"(?<![\w@])@\w+")
_LINK = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


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
