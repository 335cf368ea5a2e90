"""Generate the CLI reference from the Typer app, so the page cannot drift from the code.

Used two ways:

* as a MkDocs hook (``hooks:`` in ``mkdocs.yml``): :func:`on_page_markdown` replaces the
  marker ``<!-- imgsent-cli-reference -->`` in ``reference/cli.md`` with the generated text;
* as a script: ``python docs/_hooks/cli_reference.py`` prints the same Markdown to stdout.

The app is walked through ``typer.main.get_command(app)``: a Click group whose commands
give their name, help, parameters (declarations, type, default, help, environment
variable), epilog and sub-commands. If a sub-application fails to import (for example a
command group whose optional dependencies are missing), the commands that did register are
still documented and the page says which group is unavailable and why.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from typing import Any

MARKER = "<!-- imgsent-cli-reference -->"
PAGE = "reference/cli.md"
APP_MODULE = "imgsent.cli.app"

log = logging.getLogger("mkdocs.plugins.imgsent_cli_reference")


def load_app() -> tuple[Any, list[str]]:
    """Import the Typer app; return it and the problems met while importing its sub-apps.

    The module is executed by hand so that, when registering a sub-application raises
    ``ImportError``, the module object (and every command registered before the failure)
    is kept instead of being discarded by the import system.
    """
    problems: list[str] = []
    existing = sys.modules.get(APP_MODULE)
    if existing is not None and hasattr(existing, "app"):
        return existing.app, problems
    try:
        module = __import__(APP_MODULE, fromlist=["app"])
        return module.app, problems
    except ImportError as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    spec = importlib.util.find_spec(APP_MODULE)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot find {APP_MODULE}; install the package with `pip install -e .`.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[APP_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:
        pass  # already recorded above; keep what registered
    if not hasattr(module, "app"):
        raise ImportError(f"{APP_MODULE} defines no Typer `app`: {problems}")
    return module.app, problems


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "option") == "option"


def _default_text(param: Any) -> str | None:
    """Readable default of a parameter, or ``None`` when there is none worth showing."""
    if getattr(param, "show_default", None) is False or param.required:
        return None
    default = param.default
    if default is None or callable(default) or "UNSET" in repr(default) or "Sentinel" in repr(default):
        return None
    if _is_option(param) and getattr(param, "is_flag", False):
        if param.secondary_opts:
            return param.opts[0] if default else param.secondary_opts[0]
        return param.opts[0] if default is True else None
    if isinstance(default, (list, tuple)):
        return ", ".join(str(v) for v in default) or None
    return str(default)


def _type_text(param: Any, ctx: Any) -> str:
    """Type of a parameter in words, with its range when it has one."""
    if _is_option(param) and getattr(param, "is_flag", False):
        return "flag"
    if hasattr(param, "display_type"):  # Typer's own Click-compatible core
        name = param.display_type(ctx).strip("<>")
    else:  # Click
        name = getattr(param.type, "name", "text")
    name = re.sub(r"^list\[(.*)\]$", r"\1", name)
    words = {"str": "text", "int": "integer", "int range": "integer", "float": "number", "float range": "number",
             "Path": "path", "bool": "boolean", "choice": "choice"}
    text = words.get(name, name)
    low = getattr(param, "min", None)
    high = getattr(param, "max", None)
    if low is None and high is None and hasattr(param, "type"):
        low, high = getattr(param.type, "min", None), getattr(param.type, "max", None)
    if getattr(param, "multiple", False):
        text += ", repeatable"
    if low is not None and high is not None:
        text += f", {low} to {high}"
    elif low is not None:
        text += f", ≥ {low}"
    elif high is not None:
        text += f", ≤ {high}"
    return text


def _cell(text: str | None) -> str:
    """Escape text for a Markdown table cell."""
    if not text:
        return ""
    return " ".join(text.split()).replace("|", "\\|")


def _param_rows(command: Any, ctx: Any) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if _is_option(param) and "--help" in param.opts:
            continue
        if not _is_option(param):
            names = f"`{(param.name or '').upper()}`"
            if param.nargs == -1:
                names += " ..."
        else:
            declared = [*param.opts, *param.secondary_opts]
            names = ", ".join(f"`{o}`" for o in declared)
        help_text = getattr(param, "help", None) or ""
        envvar = getattr(param, "envvar", None)
        if envvar:
            help_text += f" Environment variable: `{envvar if isinstance(envvar, str) else ', '.join(envvar)}`."
        default = _default_text(param)
        rows.append(
            f"| {names} | {_type_text(param, ctx)} | {'yes' if param.required else ''} | "
            f"{'`' + _cell(default) + '`' if default else ''} | {_cell(help_text)} |"
        )
    return rows


def _usage(command: Any, ctx: Any) -> str:
    pieces = [re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), p) for p in command.collect_usage_pieces(ctx)]
    return f"{ctx.command_path} {' '.join(pieces)}".strip()


def _epilog(text: str) -> str:
    """Typer epilogs use Markdown already; keep indented examples as console code blocks."""
    lines = text.strip("\n").split("\n")
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.extend(["```console", *(f"$ {b}" for b in block), "```", ""])
            block.clear()

    for line in lines:
        if line.startswith("    ") and line.strip():
            block.append(line.strip())
        elif not line.strip() and block:
            continue
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out).strip()


def render_command(command: Any, ctx: Any, level: int) -> list[str]:
    """Markdown for one Click command and, recursively, its sub-commands."""
    out = [f"{'#' * level} `{ctx.command_path}`", ""]
    help_text = (command.help or "").strip()
    if help_text:
        out += [help_text, ""]
    out += ["```text", _usage(command, ctx), "```", ""]
    rows = _param_rows(command, ctx)
    if rows:
        out += ["| Argument / option | Type | Required | Default | Description |", "|---|---|---|---|---|", *rows, ""]
    if command.epilog:
        out += [_epilog(command.epilog), ""]
    if hasattr(command, "list_commands"):
        names = [n for n in command.list_commands(ctx) if not command.get_command(ctx, n).hidden]
        if names:
            out += ["Commands: " + ", ".join(f"`{n}`" for n in names) + ".", ""]
        for name in names:
            sub = command.get_command(ctx, name)
            with sub.context_class(sub, info_name=name, parent=ctx) as sub_ctx:
                out += render_command(sub, sub_ctx, min(level + 1, 6))
    return out


def generate() -> str:
    """Return the Markdown reference of every ``imgsent`` command."""
    import typer.main

    app, problems = load_app()
    command = typer.main.get_command(app)
    out: list[str] = []
    if problems:
        out += [
            '!!! warning "Some commands could not be loaded"',
            "",
            *(f"    {p}" for p in problems),
            "",
            "    The commands below are those that registered; the missing group needs its module "
            "or optional dependencies installed.",
            "",
        ]
    with command.context_class(command, info_name="imgsent") as ctx:
        out += render_command(command, ctx, level=2)
    return "\n".join(out).rstrip() + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: fill the CLI reference page."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        log.warning("%s has no %s marker; the CLI reference was not generated.", PAGE, MARKER)
        return markdown
    text = generate()
    if "Some commands could not be loaded" in text:
        log.info("CLI reference: some command groups could not be imported; see the page's warning box.")
    return markdown.replace(MARKER, text)


if __name__ == "__main__":
    sys.stdout.write(generate())
