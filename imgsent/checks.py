"""The one validator of untrusted numbers: type and inclusive range, with a message that shows both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imgsent.errors import InvalidConfigError


@dataclass(frozen=True)
class Range:
    """An ``int`` or ``float`` in ``[low, high]``. Booleans are never numbers here; an int is a valid float.

    Example:
        >>> Range(int, 16, 2048).check(224, "preprocess.image_size")
        224
        >>> Range(int, 16, 2048).check(True, "preprocess.image_size")
        Traceback (most recent call last):
        ...
        imgsent.errors.InvalidConfigError: preprocess.image_size must be an integer in [16, 2048], got True.
    """

    kind: type
    low: float
    high: float

    def check(self, value: Any, where: str) -> Any:
        """Return ``value`` if it has the right type and lies in the range.

        Raises:
            InvalidConfigError: It does not; the message names ``where``, the range and the value.
        """
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok_type = number and (isinstance(value, int) or self.kind is float)
        if not ok_type or not self.low <= value <= self.high:
            noun = "an integer" if self.kind is int else "a number"
            raise InvalidConfigError(f"{where} must be {noun} in [{self.low}, {self.high}], got {value!r}.")
        return value


def check_choice(value: Any, choices: tuple[str, ...], where: str) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        InvalidConfigError: It is not; the message lists the choices.
    """
    if value not in choices:
        raise InvalidConfigError(f"{where} must be one of {list(choices)}, got {value!r}.")
    return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings; the same ``check`` interface as :class:`Range`.

    Example:
        >>> Choice(("gelu", "gelu_tanh")).check("gelu_tanh", "architecture.args.head_activation")
        'gelu_tanh'
    """

    choices: tuple[str, ...]

    def check(self, value: Any, where: str) -> Any:
        """Return ``value`` if it is one of the choices.

        Raises:
            InvalidConfigError: It is not; the message lists the choices.
        """
        return check_choice(value, self.choices, where)
