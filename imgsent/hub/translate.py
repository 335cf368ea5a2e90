"""Translation of ``huggingface_hub`` and transport errors into imgsent's typed errors."""

from __future__ import annotations

import sys

from imgsent.config import CONFIG_NAME, WEIGHTS_NAME
from imgsent.errors import HubError, ImgsentError, ModelNotFoundError
from imgsent.hub.names import format_names, known_models


def translate_error(
    exc: BaseException,
    *,
    repo_id: str,
    revision: str | None,
    token: str | bool | None,
    offline: bool = False,
    action: str = "download",
) -> ImgsentError:
    """Map a huggingface_hub / transport error to an imgsent error with a fix in its message."""
    from huggingface_hub import errors as hf

    if isinstance(exc, ImgsentError):
        return exc
    rev, detail = revision or "main", first_line(exc, token)
    what = f"{repo_id!r} (revision {rev!r})"
    if isinstance(exc, hf.GatedRepoError):
        return ModelNotFoundError(f"Hub repo {repo_id!r} is gated: accept its terms on the Hub, then pass token=...")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return ModelNotFoundError(
            f"Hub repo {repo_id!r} was not found. Check the spelling ('owner/name'); if the repo is private, "
            f"pass token=... or set HF_TOKEN. Known model names: {format_names(known_models())}."
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return ModelNotFoundError(
            f"Revision {rev!r} does not exist in Hub repo {repo_id!r}. Pass an existing branch, tag or "
            "full commit sha as revision=..., or revision=None for 'main'."
        )
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)):
        chain = _causes(exc)
        if offline or any(isinstance(e, hf.OfflineModeIsEnabled) for e in chain):
            return ModelNotFoundError(
                f"Hub repo {what} is not in the local cache and downloads are off (HF_HUB_OFFLINE=1 or "
                f"local_files_only=True). Run `imgsent download {repo_id}` on a machine with network access "
                "first, or unset HF_HUB_OFFLINE."
            )
        cause = next((e for e in chain if not isinstance(e, hf.LocalEntryNotFoundError)), exc)
        return HubError(
            f"Could not {action} {what}: the Hub failed or could not be reached ({first_line(cause, token)}) "
            "and no cached copy exists. Check your connection or HF_ENDPOINT and retry later. For a machine "
            f"without network: run `imgsent download {repo_id}` on one that reaches the Hub, copy its Hugging Face "
            "cache folder (HF_HUB_CACHE, default ~/.cache/huggingface/hub) across, and set HF_HUB_OFFLINE=1 there."
        )
    if isinstance(exc, hf.EntryNotFoundError):
        return ModelNotFoundError(
            f"Hub repo {what} has no such file: {detail}. A model repo needs {CONFIG_NAME} and {WEIGHTS_NAME}."
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(
                f"The Hub refused to {action} {repo_id!r} (HTTP {status}): pass a token with the right "
                "permissions as token=... or set HF_TOKEN."
            )
        return HubError(f"The Hub failed to {action} {what}: HTTP {status} ({detail}). Retry later.")
    if isinstance(exc, (OSError, *_transport_errors())):
        return HubError(
            f"Could not {action} {what}: {type(exc).__name__}: {detail}. "
            "Check your connection or HF_ENDPOINT and retry; nothing partial was kept in the cache."
        )
    if isinstance(exc, ValueError):
        return ModelNotFoundError(f"Cannot {action} {what}: {detail}")
    return HubError(f"Unexpected error while trying to {action} {what}: {type(exc).__name__}: {detail}")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Return the network error base classes of the HTTP clients already loaded by huggingface_hub."""
    bases = (getattr(sys.modules.get(m), "TransportError", None) for m in ("httpx2", "httpx"))
    return tuple(b for b in bases if isinstance(b, type))


def _causes(exc: BaseException) -> list[BaseException]:
    """Return ``exc`` followed by its chain of causes."""
    chain, seen = [exc], {id(exc)}
    while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and id(nxt) not in seen:
        chain.append(nxt)
        seen.add(id(nxt))
    return chain


def first_line(exc: BaseException, token: str | bool | None) -> str:
    """Return the first meaningful line of an error message, with the token masked."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0].rstrip(".") if lines else type(exc).__name__
    if isinstance(token, str) and token:
        text = text.replace(token, "***")
    return text[:300]
