"""How to run a prediction: the one options record, validated once, shared by every predict method.

:meth:`Predictor.predict <imgsent.Predictor.predict>`, ``iter_predict``, ``iter_predict_batches``
and :func:`imgsent.predict` take these options as keywords (or a whole :class:`PredictOptions`
as ``options=``); :func:`with_predict_options` shows them in each method's signature, so
``help()`` and :func:`inspect.signature` list them, with their defaults, from this one place.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from imgsent.checks import Range
from imgsent.errors import InvalidConfigError
from imgsent.images import DEFAULT_MAX_PIXELS
from imgsent.outputs import check_min_confidence

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PredictOptions:
    """Options of a prediction run, checked when the record is made.

    Attributes:
        batch_size: Images per forward pass. Default 32.
        workers: Decoding processes. ``None`` (default) picks a good number for the device and
            engine; 0 decodes in the calling process (best for a handful of in-memory images).
        binary: Drop the neutral output and compare negative with positive (the paper's
            evaluation protocol). Probabilities are still all three. Default False.
        tta: Average the probabilities of each image and its horizontal mirror. Default False.
        max_pixels: Inputs with more pixels are refused as decompression bombs.
        min_confidence: Predictions whose calibrated confidence is below it get the label
            ``"uncertain"`` (probabilities and confidence kept). Default 0: never.

    Raises:
        InvalidConfigError: A value has the wrong type or lies out of range; the message shows it.

    Example:
        >>> PredictOptions(batch_size=64, min_confidence=0.6).batch_size
        64
        >>> PredictOptions(batch_size=0)
        Traceback (most recent call last):
        ...
        imgsent.errors.InvalidConfigError: batch_size must be an integer in [1, 65536], got 0.
    """

    batch_size: int = 32
    workers: int | None = None
    binary: bool = False
    tta: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        Range(int, 1, 65536).check(self.batch_size, "batch_size")
        if self.workers is not None:
            Range(int, 0, 1024).check(self.workers, "workers")
        for flag in ("binary", "tta"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidConfigError(f"{flag} must be True or False, got {getattr(self, flag)!r}.")
        Range(int, 1, 2**62).check(self.max_pixels, "max_pixels")
        object.__setattr__(self, "min_confidence", check_min_confidence(self.min_confidence))

    @classmethod
    def build(cls, options: PredictOptions | None = None, **overrides: Any) -> PredictOptions:
        """``options`` (default: all defaults) with ``overrides`` applied; the one place keywords are checked.

        Raises:
            InvalidConfigError: An unknown option (the message lists the valid ones) or a bad value.

        Example:
            >>> PredictOptions.build(PredictOptions(binary=True), batch_size=8)
            PredictOptions(batch_size=8, workers=None, binary=True, tta=False, max_pixels=89478485, min_confidence=0.0)
        """
        if options is not None and not isinstance(options, PredictOptions):
            raise InvalidConfigError(f"options must be a PredictOptions, got {type(options).__name__}.")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InvalidConfigError(f"Unknown option {unknown[0]!r}. Valid options: {', '.join(option_names())}.")
        base = options if options is not None else cls()
        return dataclasses.replace(base, **overrides) if overrides else base


def option_names() -> tuple[str, ...]:
    """The names of the :class:`PredictOptions` fields, in order."""
    return tuple(f.name for f in dataclasses.fields(PredictOptions))


def with_predict_options(func: _F) -> _F:
    """Show the :class:`PredictOptions` fields as keyword-only parameters of ``func``, in place of its ``**overrides``."""
    signature = inspect.signature(func)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    defaults = PredictOptions()
    params += [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, f.name), annotation=f.type)
        for f in dataclasses.fields(PredictOptions)
    ]
    func.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return func
