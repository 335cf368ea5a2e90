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

Modules: :mod:`~imgsent.distill.corpus.records` (``Post``, ``CorpusReport``),
:mod:`~imgsent.distill.corpus.formats` (one reader per format) and
:mod:`~imgsent.distill.corpus.reader` (filters, :func:`read_corpus`).
"""

from __future__ import annotations

from imgsent.distill.corpus.reader import FORMATS, CorpusFormat, CorpusReader, read_corpus
from imgsent.distill.corpus.records import DEFAULT_MIN_WORDS, CorpusReport, Post, normalize_text

__all__ = ["DEFAULT_MIN_WORDS", "FORMATS", "CorpusFormat", "CorpusReader", "CorpusReport", "Post", "normalize_text",
           "read_corpus"]
