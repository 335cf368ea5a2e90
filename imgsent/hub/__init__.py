"""The only package that talks to the Hugging Face Hub.

It turns a model name, a local folder or a Hub repo id into a local folder holding
``config.json`` and ``model.safetensors``, pre-fetches models for offline machines,
publishes model folders and lists the models in the local cache. Every transfer goes
through ``huggingface_hub`` (``snapshot_download``, ``HfApi``, ``scan_cache_dir``),
so its cache layout, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and timeout
settings all apply. Weights are accepted in safetensors format only: pickle
checkpoints are refused, never loaded.

Errors from ``huggingface_hub`` are translated into imgsent's typed errors:
a missing repo, revision or file raises :class:`~imgsent.errors.ModelNotFoundError`;
an unreachable or failing server raises :class:`~imgsent.errors.HubError`.

Modules: :mod:`~imgsent.hub.names` (packaged model, known names, local folders, repo ids),
:mod:`~imgsent.hub.download` (resolve, download, list the cache), :mod:`~imgsent.hub.release`
(the authors' release files, handed to a converter the caller gives), :mod:`~imgsent.hub.push`
(publish), :mod:`~imgsent.hub.translate` (``huggingface_hub`` errors to imgsent errors) and
:mod:`~imgsent.hub.client` (settings shared by every transfer). Nothing here imports
:mod:`imgsent.convert`.
"""

from __future__ import annotations

from imgsent.hub.client import ALLOW_PATTERNS
from imgsent.hub.download import CachedModel, cached_models, download_model, resolve_model_dir
from imgsent.hub.names import PICKLE_SUFFIXES
from imgsent.hub.push import push_to_hub

__all__ = [
    "ALLOW_PATTERNS",
    "PICKLE_SUFFIXES",
    "CachedModel",
    "cached_models",
    "download_model",
    "push_to_hub",
    "resolve_model_dir",
]
