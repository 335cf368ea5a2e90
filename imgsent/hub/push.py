"""Publish a model folder to the Hub."""

from __future__ import annotations

import os
from pathlib import Path

from imgsent.errors import ModelNotFoundError, UnsafeWeightsError
from imgsent.hub.client import ALLOW_PATTERNS, api_client
from imgsent.hub.names import PICKLE_SUFFIXES, is_repo_id, validate_local
from imgsent.hub.translate import translate_error


def push_to_hub(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload imgsent model",
    create_repo: bool = True,
    endpoint: str | None = None,
) -> str:
    """Upload a model folder (``config.json``, ``model.safetensors``, optional ``README.md``).

    Args:
        folder: A folder written by ``SentimentModel.save_pretrained``.
        repo_id: Target repo, ``"owner/name"``.
        token: Hub token with write access; ``None`` uses ``HF_TOKEN`` or the saved login.
        revision: Branch to commit to, created from ``main`` if missing. Defaults to ``None`` (``"main"``).
        private: Visibility of a newly created repo. Defaults to ``None`` (the Hub's default).
        commit_message: Commit summary. Defaults to ``"Upload imgsent model"``.
        create_repo: Create the repo if it does not exist. Defaults to ``True``.
        endpoint: Hub URL. Defaults to ``None`` (``HF_ENDPOINT`` or https://huggingface.co).

    Returns:
        The URL of the new commit.

    Raises:
        ModelNotFoundError: ``folder`` lacks ``config.json`` or ``model.safetensors``, or the repo
            does not exist and ``create_repo=False``.
        UnsafeWeightsError: ``folder`` contains pickle files.
        HubError: The upload failed (network, permissions, server error).

    Example:
        >>> push_to_hub("runs/lite0/export", "acme/imgsent-lite0")  # doctest: +SKIP
        'https://huggingface.co/acme/imgsent-lite0/commit/5d1e...'
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"Cannot push {os.fspath(folder)!r}: it is not a folder.")
    pickles = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeWeightsError(
            f"Refusing to push {os.fspath(folder)!r}: it contains pickle files {pickles}. "
            "Remove them; imgsent models ship safetensors weights only."
        )
    validate_local(path)
    if not isinstance(repo_id, str) or not is_repo_id(repo_id):
        raise ModelNotFoundError(
            f"Invalid Hub repo id {repo_id!r}: expected 'owner/name' (letters, digits, '-', '_' and '.')."
        )
    api = api_client(token=token, endpoint=endpoint)
    try:
        if create_repo:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=str(revision), exist_ok=True, repo_type="model")
        info = api.upload_folder(
            folder_path=path, repo_id=repo_id, repo_type="model", revision=revision,
            commit_message=commit_message, allow_patterns=list(ALLOW_PATTERNS),
        )
    except Exception as exc:
        raise translate_error(exc, repo_id=repo_id, revision=revision, token=token, action="push to") from exc
    return str(getattr(info, "commit_url", info))
