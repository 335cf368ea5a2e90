"""imgsent.hub against a local Hub-protocol server (tests/hubserver.py): no network needed."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from huggingface_hub import constants

from tests.hubserver import HubServer, sha256_hex
import imgsent
from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.errors import HubError, ModelNotFoundError, UnsafeWeightsError
from imgsent.hub import cached_models, download_model, push_to_hub, resolve_model_dir

REPO = "acme/tiny"
TOKEN = "hf_TestSecretToken123"


def model_files(seed: int) -> dict[str, bytes]:
    """A real config.json and a real safetensors file with two small tensors."""
    import torch
    from safetensors.torch import save as save_safetensors

    torch.manual_seed(seed)
    weights = save_safetensors({"head.weight": torch.randn(3, 8), "head.bias": torch.randn(3)})
    config = ModelConfig(ArchitectureConfig("efficientnet_lite0", {}), PreprocessConfig(), provenance={"seed": seed})
    buffer = io.StringIO()
    import json

    json.dump(config.to_dict(), buffer, indent=2)
    return {"config.json": buffer.getvalue().encode(), "model.safetensors": weights, "README.md": b"# tiny\n"}


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def v1() -> dict[str, bytes]:
    return model_files(1)


@pytest.fixture(scope="module")
def v2() -> dict[str, bytes]:
    return model_files(2)


@pytest.fixture(autouse=True)
def isolated_hf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No saved token, no offline mode, no Xet, quiet progress bars, default timeouts."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"), raising=False)
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"), raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True, raising=False)


@pytest.fixture
def server():
    with HubServer(token=TOKEN) as hub:
        yield hub


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


def fetch(server: HubServer, cache: Path, repo: str = REPO, **options) -> Path:
    return resolve_model_dir(repo, cache_dir=cache, endpoint=server.url, **options)


def read(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


# ---------------------------------------------------------------------- downloads


def test_download_by_repo_id(server, cache, v1):
    server.commit(REPO, v1, create=True)
    folder = fetch(server, cache)
    assert read(folder) == v1  # .gitattributes is not fetched
    assert cache in folder.parents


def test_revision_pinning_by_branch_tag_and_sha(server, cache, v1, v2):
    sha1 = server.commit(REPO, v1, create=True)
    server.create_tag(REPO, "v1")
    server.create_branch(REPO, "dev")
    server.commit(REPO, {"model.safetensors": b"dev-weights" + v2["model.safetensors"]}, branch="dev")
    server.commit(REPO, v2)
    assert read(fetch(server, cache))["model.safetensors"] == v2["model.safetensors"]
    assert read(fetch(server, cache, revision="v1")) == v1
    assert read(fetch(server, cache, revision=sha1)) == v1
    assert read(fetch(server, cache, revision="dev"))["model.safetensors"].startswith(b"dev-weights")
    assert fetch(server, cache, revision="v1").name == sha1


@pytest.mark.parametrize("how", ["local_files_only", "HF_HUB_OFFLINE constant", "HF_HUB_OFFLINE env"])
def test_offline_reuses_warm_cache(server, cache, v1, monkeypatch, how):
    server.commit(REPO, v1, create=True)
    warm = fetch(server, cache, revision="main")
    n_requests = len(server.requests)
    if how == "local_files_only":
        folder = fetch(server, cache, local_files_only=True)
    else:
        if how == "HF_HUB_OFFLINE env":
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        else:
            offline(monkeypatch)
        folder = fetch(server, cache)
    assert folder == warm and read(folder) == v1
    assert len(server.requests) == n_requests  # no network at all


def test_offline_cold_cache_is_model_not_found(server, cache, v1, monkeypatch):
    server.commit(REPO, v1, create=True)
    offline(monkeypatch)
    with pytest.raises(
        ModelNotFoundError,
        match=r"'acme/tiny' \(revision 'main'\) is not in the local cache.*imgsent download acme/tiny.*HF_HUB_OFFLINE",
    ):
        fetch(server, cache)
    with pytest.raises(ModelNotFoundError, match="not in the local cache"):
        fetch(server, cache, revision="v1", local_files_only=True)
    assert server.requests == []


def test_missing_repo_revision_and_file(server, cache, v1):
    with pytest.raises(
        ModelNotFoundError,
        match=r"Hub repo 'acme/nope' was not found\. Check the spelling.*'default'",
    ):
        fetch(server, cache, "acme/nope")
    server.commit(REPO, v1, create=True)
    with pytest.raises(
        ModelNotFoundError,
        match=r"Revision 'v9' does not exist in Hub repo 'acme/tiny'\. Pass an existing branch",
    ):
        fetch(server, cache, revision="v9")
    server.commit("acme/no-weights", {"config.json": v1["config.json"]}, create=True)
    with pytest.raises(
        ModelNotFoundError,
        match=r"'acme/no-weights' is not an imgsent model: missing \['model.safetensors'\]",
    ):
        fetch(server, cache, "acme/no-weights")
    # The listing has the file but the server answers 404 EntryNotFound for it.
    server.add_fault(r"/resolve/.*/model\.safetensors$", status=404, headers={"X-Error-Code": "EntryNotFound"})
    with pytest.raises(ModelNotFoundError, match=r"'acme/tiny' \(revision 'main'\) has no such file"):
        fetch(server, cache)


def test_pickle_only_repo_is_refused(server, cache, v1):
    server.commit("acme/pickled", {"config.json": v1["config.json"], "pytorch_model.bin": b"\x80\x04not-loaded"}, create=True)
    with pytest.raises(
        UnsafeWeightsError,
        match=r"only has pickle weights \['pytorch_model.bin'\]\. imgsent never unpickles",
    ):
        fetch(server, cache, "acme/pickled")
    assert not any(p.name == "pytorch_model.bin" for p in cache.rglob("*"))


def test_known_name_maps_to_repo(server, cache, v1, monkeypatch):
    import imgsent.registry

    server.commit(REPO, v1, create=True)
    monkeypatch.setitem(imgsent.registry.KNOWN_MODELS, "tiny", imgsent.registry.HubModel(REPO))
    assert read(resolve_model_dir("tiny", cache_dir=cache, endpoint=server.url)) == v1


def test_private_repo_needs_token_and_token_never_shows(server, cache, v1):
    server.create_repo("acme/secret", private=True)
    server.commit("acme/secret", v1)
    with pytest.raises(ModelNotFoundError, match=r"was not found.*token=") as info:
        fetch(server, cache, "acme/secret", token="hf_WrongToken999")
    assert "hf_WrongToken999" not in str(info.value)
    assert read(fetch(server, cache, "acme/secret", token=TOKEN)) == v1


def test_download_model_and_cached_models(server, cache, v1, v2):
    assert cached_models(cache) == []
    sha1 = server.commit(REPO, v1, create=True)
    server.commit("acme/other", v2, create=True)
    folder = download_model(REPO, cache_dir=cache, endpoint=server.url)
    download_model("acme/other", cache_dir=cache, endpoint=server.url)
    found = cached_models(cache)
    assert [m.repo_id for m in found] == ["acme/other", REPO]
    tiny = found[1]
    assert (tiny.commit_hash, tiny.refs, tiny.path) == (sha1, ("main",), folder)
    assert tiny.size_on_disk >= len(v1["model.safetensors"])
    assert str(tiny) == f"{REPO}@{sha1[:12]} (main)"


# ---------------------------------------------------------------------- local names and folders


def test_local_folder_cases(tmp_path, v1):
    good = write_folder(tmp_path / "good", v1)
    assert resolve_model_dir(good) == good
    assert resolve_model_dir(str(good), revision="ignored") == good
    no_weights = write_folder(tmp_path / "no-weights", {"config.json": v1["config.json"]})
    with pytest.raises(
        ModelNotFoundError,
        match=r"not an imgsent model folder: missing \['model.safetensors'\].*save_pretrained",
    ):
        resolve_model_dir(no_weights)
    pickled = write_folder(tmp_path / "pickled", {"config.json": b"{}", "pytorch_model.bin": b"x"})
    with pytest.raises(
        UnsafeWeightsError,
        match=r"(?s)pickle weights \['pytorch_model.bin'\] but no model.safetensors.*save_file\(torch.load",
    ):
        resolve_model_dir(pickled)
    with pytest.raises(UnsafeWeightsError, match="is a pickle checkpoint"):
        resolve_model_dir(write_folder(tmp_path / "ckpt", {"model.pt": b"x"}) / "model.pt")
    with pytest.raises(ModelNotFoundError, match=r"is a file; pass the folder"):
        resolve_model_dir(good / "config.json")


def test_bad_names_list_known_models(tmp_path):
    with pytest.raises(
        ModelNotFoundError,
        match=r"No model folder at '\./nope'.*known model name \('default', 'paper-vit-b16'.*'owner/name'",
    ):
        resolve_model_dir("./nope")
    with pytest.raises(ModelNotFoundError, match="No model folder at"):
        resolve_model_dir(tmp_path / "missing")
    with pytest.raises(
        ModelNotFoundError,
        match=r"Unknown model 'defualt'.*Did you mean 'default'\?.*Known names: 'default'",
    ):
        resolve_model_dir("defualt")
    with pytest.raises(ModelNotFoundError, match=r"Unknown model 'acme/bad--name'"):
        resolve_model_dir("acme/bad--name")


def test_default_model_is_the_packaged_folder():
    folder = Path(imgsent.__file__).parent / "weights" / "default"
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        assert resolve_model_dir() == folder == resolve_model_dir("default")
    else:
        with pytest.raises(ModelNotFoundError, match=r"packaged default model is missing.*Reinstall imgsent"):
            resolve_model_dir()


# ---------------------------------------------------------------------- push


def test_push_then_download_round_trip(server, cache, tmp_path, v1):
    folder = write_folder(tmp_path / "export", {**v1, "notes.txt": b"not uploaded"})
    url = push_to_hub(folder, "acme/pushed", token=TOKEN, endpoint=server.url)
    assert url.startswith(f"{server.url}/acme/pushed/commit/")
    assert server.files("acme/pushed") == {".gitattributes": server.files("acme/pushed")[".gitattributes"], **v1}
    assert read(fetch(server, cache, "acme/pushed")) == v1
    # Unchanged files make no new commit; a changed file on a new branch does.
    assert push_to_hub(folder, "acme/pushed", token=TOKEN, endpoint=server.url) == url
    (folder / "README.md").write_bytes(b"# dev\n")
    url_dev = push_to_hub(
        folder, "acme/pushed", token=TOKEN, revision="dev", commit_message="dev copy", endpoint=server.url
    )
    assert url_dev != url and server.repos["acme/pushed"].commits[url_dev.rsplit("/", 1)[1]].message == "dev copy"
    assert server.files("acme/pushed", "dev")["README.md"] == b"# dev\n"
    assert server.files("acme/pushed", "main")["README.md"] == v1["README.md"]


@pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")
def test_push_large_files_through_lfs(cache, tmp_path, v1, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # basic LFS transfer, as without hf_xet
    with HubServer(token=TOKEN, lfs_threshold=100) as server:
        push_to_hub(write_folder(tmp_path / "export", v1), "acme/lfs", token=TOKEN, endpoint=server.url)
        assert sha256_hex(v1["model.safetensors"]) in server.lfs_store
        assert ("PUT", f"/__lfs/upload/{sha256_hex(v1['model.safetensors'])}") in server.requests
        assert read(fetch(server, cache, "acme/lfs")) == v1


def test_push_refuses_bad_folders_and_hides_token(server, tmp_path, v1):
    with pytest.raises(UnsafeWeightsError, match=r"contains pickle files \['optimizer.pt'\]"):
        push_to_hub(write_folder(tmp_path / "a", {**v1, "optimizer.pt": b"x"}), "acme/x", endpoint=server.url)
    with pytest.raises(ModelNotFoundError, match=r"missing \['model.safetensors'\]"):
        push_to_hub(write_folder(tmp_path / "b", {"config.json": b"{}"}), "acme/x", endpoint=server.url)
    with pytest.raises(ModelNotFoundError, match=r"Invalid Hub repo id 'no-owner': expected 'owner/name'"):
        push_to_hub(write_folder(tmp_path / "c", v1), "no-owner", endpoint=server.url)
    with pytest.raises(HubError, match=r"refused to push to 'acme/x' \(HTTP 401\)") as info:
        push_to_hub(tmp_path / "c", "acme/x", token="hf_WrongToken999", endpoint=server.url)
    assert "hf_WrongToken999" not in str(info.value)
    assert server.repos.keys() == set()


# ---------------------------------------------------------------------- faults


def test_http_500_cold_is_hub_error_and_warm_falls_back(server, cache, v1):
    server.commit(REPO, v1, create=True)
    server.add_fault(r"^/api/models/", status=500)
    with pytest.raises(
        HubError,
        match=r"Could not download 'acme/tiny' \(revision 'main'\): the Hub failed or could not be reached "
        r"\(.*500.*\) and no cached copy exists.*imgsent download acme/tiny",
    ):
        fetch(server, cache)
    server.clear_faults()
    warm = fetch(server, cache)
    server.add_fault(r"", status=500)  # every endpoint fails
    assert fetch(server, cache) == warm


def test_transient_500_on_file_is_retried(server, cache, v1):
    server.commit(REPO, v1, create=True)
    fault = server.add_fault(r"/resolve/.*/config\.json$", method="HEAD", status=503, times=1)
    assert read(fetch(server, cache)) == v1 and fault.hits == 1


def test_slow_metadata_times_out_then_retries(server, cache, v1, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 0.5)
    server.commit(REPO, v1, create=True)
    fault = server.add_fault(r"/resolve/", method="HEAD", delay=2.0, times=1)
    start = time.monotonic()
    assert read(fetch(server, cache)) == v1
    assert fault.hits == 1 and time.monotonic() - start < 10


def test_slow_download_resumes(server, cache, v1, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.5)
    server.commit(REPO, v1, create=True)
    fault = server.add_fault(r"^/__cdn/", method="GET", delay=2.0, times=1)
    assert read(fetch(server, cache)) == v1 and fault.hits == 1


def test_dropped_connection_mid_file_resumes_with_range(server, cache, v1):
    server.commit(REPO, v1, create=True)
    server.add_fault(r"^/__cdn/", method="GET", truncate_at=100, drop_connection=True, times=1)
    assert read(fetch(server, cache)) == v1
    assert sum(1 for m, p in server.requests if m == "GET" and p.startswith("/__cdn/")) == 2


def test_truncated_download_fails_cleanly_and_cache_recovers(server, cache, v1):
    server.commit(REPO, v1, create=True)
    server.add_fault(r"^/__cdn/", method="GET", truncate_at=100, drop_connection=False)
    with pytest.raises(HubError, match=r"Could not download 'acme/tiny'.*Consistency check failed"):
        fetch(server, cache)
    assert not list(cache.rglob("*.incomplete"))
    assert not (cache / "models--acme--tiny" / "blobs" / sha256_hex(v1["model.safetensors"])).exists()
    server.clear_faults()
    assert read(fetch(server, cache)) == v1


def test_wrong_etag_is_detected_and_not_cached(server, cache, v1):
    server.commit(REPO, v1, create=True)
    server.add_fault(r"/resolve/.*/model\.safetensors$", method="HEAD", etag=sha256_hex(b"something else"))
    with pytest.raises(HubError, match=r"model.safetensors of 'acme/tiny' does not match its checksum.*deleted"):
        fetch(server, cache)
    server.clear_faults()
    folder = fetch(server, cache)
    assert read(folder) == v1
    assert (folder / "model.safetensors").resolve().name == sha256_hex(v1["model.safetensors"])


def test_wrong_etag_on_small_file_is_detected(server, cache, v1):
    server.commit(REPO, v1, create=True)
    server.add_fault(r"/resolve/.*/config\.json$", method="HEAD", etag="0" * 40, times=1)
    with pytest.raises(HubError, match=r"config.json of 'acme/tiny' does not match its checksum"):
        fetch(server, cache)
    assert read(fetch(server, cache)) == v1


def test_repo_deleted_after_warm_download(server, cache, v1, monkeypatch):
    sha = server.commit(REPO, v1, create=True)
    warm = fetch(server, cache)
    server.delete_repo(REPO)
    with pytest.raises(ModelNotFoundError, match="was not found"):
        fetch(server, cache, revision=sha[:7] + "x" * 33)  # an uncached commit of a gone repo
    assert fetch(server, cache) == warm  # huggingface_hub falls back to the cached snapshot
    offline(monkeypatch)
    assert read(fetch(server, cache)) == v1
    assert read(fetch(server, cache, revision=sha)) == v1


def test_server_down(cache, v1):
    with HubServer() as server:
        server.commit(REPO, v1, create=True)
        url = server.url
        warm = resolve_model_dir(REPO, cache_dir=cache, endpoint=url)
    assert resolve_model_dir(REPO, cache_dir=cache, endpoint=url) == warm
    with pytest.raises(
        HubError,
        match=r"Could not download 'acme/other'.*could not be reached.*Check your connection or HF_ENDPOINT",
    ):
        resolve_model_dir("acme/other", cache_dir=cache, endpoint=url)


def test_endpoint_from_environment_in_subprocess(server, cache, v1, tmp_path):
    """HF_ENDPOINT set before import is honoured without passing endpoint=."""
    import subprocess
    import sys

    server.commit(REPO, v1, create=True)
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf-home")}
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    code = f"from imgsent.hub import resolve_model_dir; print(resolve_model_dir({REPO!r}, cache_dir={str(cache)!r}))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert read(Path(out.stdout.strip())) == v1


def test_download_model_while_offline(server, cache, v1, monkeypatch):
    server.commit(REPO, v1, create=True)
    offline(monkeypatch)
    with pytest.raises(ModelNotFoundError, match=r"downloads are off \(HF_HUB_OFFLINE=1"):
        download_model(REPO, cache_dir=cache, endpoint=server.url)


@pytest.mark.slow
def test_stalled_download_gives_up_with_hub_error(server, cache, v1, monkeypatch):
    """Every attempt stalls: huggingface_hub retries 5 times (about 8 s here), then imgsent raises HubError."""
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    server.commit(REPO, v1, create=True)
    server.add_fault(r"^/__cdn/", method="GET", delay=3.0)
    with pytest.raises(HubError, match=r"Could not download 'acme/tiny'.*Timeout.*Check your connection"):
        fetch(server, cache)
    assert not list(cache.rglob("*.incomplete"))
