"""Griffe extension: adapt imgsent's docstrings to what mkdocstrings renders.

* A Google-style ``Example:`` section (the singular heading the style guide also allows) is
  read as ``Examples:``; griffe only recognises the plural and would otherwise render the
  doctest as plain text.
* Sphinx cross-reference roles (``:class:`~imgsent.Prediction```, ``:func:`load_image```)
  become code spans showing the short name, instead of being printed literally.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")


def _role_to_code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1]}`" if match.group(1) else f"`{target}`"


class ExampleSections(griffe.Extension):
    """Rewrite ``Example:`` headings and Sphinx roles on every loaded object's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = _HEADING.sub(r"\1Examples:", obj.docstring.value)
        obj.docstring.value = _ROLE.sub(_role_to_code, text)
