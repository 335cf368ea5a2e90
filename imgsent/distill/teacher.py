"""Text teachers: models that turn a post's text into (negative, neutral, positive) probabilities.

A teacher is anything with ``id``, ``revision`` and ``predict_proba(texts)`` (see
:class:`Teacher`). Two are provided:

* :class:`VaderTeacher`: the VADER lexicon (``vaderSentiment``, ``imgsent[distill]``);
* :class:`HFTeacher`: a Transformers sequence classifier such as
  ``cardiffnlp/twitter-roberta-base-sentiment-latest`` (the paper's teacher).

:func:`~imgsent.distill.labels.label_corpus` runs a teacher over posts once and caches its outputs on disk; training reads the cache,
never the teacher.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from imgsent.config import LABELS
from imgsent.errors import TeacherError, require_extra
from imgsent.hashing import update_from_file

if TYPE_CHECKING:
    import numpy as np
    import torch


@runtime_checkable
class Teacher(Protocol):
    """The interface every teacher implements.

    Attributes:
        id: Model name or path, recorded in the label cache.
        revision: Version of the model (commit, weights hash, or mapping parameters).
    """

    id: str
    revision: str

    def predict_proba(self, texts: list[str]) -> torch.Tensor | np.ndarray:
        """Return probabilities ``[len(texts), 3]`` in the order negative, neutral, positive."""
        ...


class VaderTeacher:
    """VADER as a three-class teacher.

    VADER returns ``neg``/``neu``/``pos`` proportions of the text's tokens and a
    ``compound`` score in [-1, 1]. The proportions are a poor distribution: ``neu`` is the
    share of words without sentiment, so it dominates almost every text. The ``compound``
    score is VADER's actual judgement, and its sign and magnitude are what VADER's authors
    threshold (at +-0.05) to classify. So the probabilities are an ordinal logistic model
    of the compound ``c``, a softmax over::

        logits = [(-c - band) / temperature, 0, (c - band) / temperature]

    * ``band`` is the ``|c|`` at which a polar class and neutral are equally likely;
    * ``temperature`` sets how fast confidence grows away from that point.

    With the defaults (``band=0.3``, ``temperature=0.1``), a text with no sentiment
    words (``c = 0``) is neutral with probability 0.91, and ``c = +-0.6`` is polar
    with 0.95; so the paper's confidence thresholds (0.9 / 0.9 / 0.7) keep texts with a
    clear signal and drop the weak ones in between. ``band=0.05`` reproduces VADER's own
    thresholds as the argmax, but then no text is confidently neutral.

    Args:
        band: Compound magnitude where polar and neutral tie. Default 0.3.
        temperature: Softness of the mapping (> 0). Default 0.1.

    Example:
        >>> teacher = VaderTeacher()
        >>> teacher.predict_proba(["I love this, what a great day!"]).astype(float).round(2).tolist()
        [[0.0, 0.0, 1.0]]
    """

    def __init__(self, *, band: float = 0.3, temperature: float = 0.1) -> None:
        require_extra("vaderSentiment", "distill")
        if not (math.isfinite(band) and 0.0 <= band < 1.0):
            raise TeacherError(f"band must be in [0, 1), got {band!r}.")
        if not (math.isfinite(temperature) and temperature > 0.0):
            raise TeacherError(f"temperature must be > 0, got {temperature!r}.")
        from importlib.metadata import version

        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self.band = band
        self.temperature = temperature
        self.id = "vader"
        self.revision = f"vaderSentiment-{version('vaderSentiment')};band={band};temperature={temperature}"

    def compound(self, texts: list[str]) -> list[float]:
        """VADER's compound score of each text."""
        return [float(self._analyzer.polarity_scores(t)["compound"]) for t in texts]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Probabilities ``[len(texts), 3]`` (negative, neutral, positive), float32."""
        return compound_to_proba(self.compound(texts), band=self.band, temperature=self.temperature)


def compound_to_proba(compound: Sequence[float], *, band: float = 0.3, temperature: float = 0.1) -> np.ndarray:
    """Map VADER compound scores to (negative, neutral, positive) probabilities; see :class:`VaderTeacher`.

    Example:
        >>> compound_to_proba([0.0, 0.6, -0.6]).astype(float).round(2).tolist()
        [[0.05, 0.91, 0.05], [0.0, 0.05, 0.95], [0.95, 0.05, 0.0]]
    """
    import numpy as np

    c = np.asarray(compound, dtype=np.float64).reshape(-1)
    logits = np.stack([(-c - band) / temperature, np.zeros_like(c), (c - band) / temperature], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class HFTeacher:
    """A Transformers sequence classifier with three sentiment labels.

    The model loads with ``use_safetensors=True`` and never runs remote code. Its
    ``config.id2label`` must name exactly ``negative``, ``neutral`` and ``positive`` (any
    case, any order); outputs are reordered to (negative, neutral, positive). Models with
    generic names (``LABEL_0``...) need ``label_map``.

    Args:
        model_id_or_path: Hub id or local folder.
        revision: Hub revision (branch, tag or commit). Recorded in the cache.
        device: Torch device. Default ``"cpu"``.
        batch_size: Texts per forward pass. Default 32.
        max_length: Tokens per text; longer texts are truncated. Default 128.
        label_map: Maps each model label (name or index) to one of negative/neutral/positive,
            e.g. ``{"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}``.
        local_files_only: Do not contact the Hub. Default ``False``.

    Raises:
        TeacherError: The labels are not exactly negative/neutral/positive.

    Example:
        >>> teacher = HFTeacher("cardiffnlp/twitter-roberta-base-sentiment-latest")  # doctest: +SKIP
        >>> teacher.predict_proba(["what a lovely day @user"]).shape  # doctest: +SKIP
        torch.Size([1, 3])
    """

    def __init__(
        self,
        model_id_or_path: str | Path,
        *,
        revision: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int = 128,
        label_map: Mapping[str | int, str] | None = None,
        local_files_only: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if batch_size < 1 or max_length < 2:
            raise TeacherError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size} and {max_length}.")
        source = str(model_id_or_path)
        kwargs: dict[str, Any] = {"revision": revision, "local_files_only": local_files_only}
        self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **kwargs)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            source, use_safetensors=True, trust_remote_code=False, **kwargs
        )
        self.model.eval().to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self._order = _label_order(dict(self.model.config.id2label), label_map, source)
        self.id = source
        self.revision = revision or getattr(self.model.config, "_commit_hash", None) or _folder_hash(source)

    def predict_proba(self, texts: list[str]) -> torch.Tensor:
        """Probabilities ``[len(texts), 3]`` (negative, neutral, positive), float32 on CPU."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                logits = self.model(**enc).logits.float()
                out.append(torch.softmax(logits, dim=-1)[:, self._order].cpu())
        return torch.cat(out) if out else torch.zeros((0, 3))


def _label_order(id2label: dict[Any, str], label_map: Mapping[str | int, str] | None, source: str) -> list[int]:
    """Indices of the model outputs for negative, neutral, positive."""
    id2label = {int(k): str(v) for k, v in id2label.items()}
    names: dict[int, str] = {}
    for idx, name in id2label.items():
        if label_map is not None:
            mapped = label_map.get(name, label_map.get(idx))  # type: ignore[call-overload]
            names[idx] = str(mapped).lower() if mapped is not None else name.lower()
        else:
            names[idx] = name.lower()
    if sorted(names.values()) != sorted(LABELS) or len(names) != 3:
        generic = all(n.upper().startswith("LABEL_") for n in id2label.values())
        hint = (
            "Its labels are generic; pass label_map={'LABEL_0': 'negative', 'LABEL_1': 'neutral', "
            "'LABEL_2': 'positive'} after checking the model card."
            if generic and label_map is None
            else "Use a three-class sentiment model, or pass label_map to name each label."
        )
        raise TeacherError(
            f"Teacher {source!r} has labels {id2label} (mapped: {names}); a teacher must have exactly "
            f"the labels {list(LABELS)}. {hint}"
        )
    by_name = {n: i for i, n in names.items()}
    return [by_name[label] for label in LABELS]


def _folder_hash(source: str) -> str:
    """Short SHA-256 of a local model's config and weights, used as its revision."""
    folder = Path(source)
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = folder / name
        if path.is_file():
            update_from_file(digest, path)
    return "sha256:" + digest.hexdigest()[:16]


__all__ = ["HFTeacher", "Teacher", "TeacherError", "VaderTeacher", "compound_to_proba"]
