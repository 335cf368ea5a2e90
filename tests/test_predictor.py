from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imgsent.errors import InvalidConfigError
from imgsent.models.sentiment import SentimentModel
from imgsent.predictor import Predictor
from imgsent.runtime import resolve_device, resolve_dtype
from tests.conftest import make_photo


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor.from_pretrained(str(tiny_model_dir), device="cpu")


def test_every_input_type(predictor, photo_dir):
    path = photo_dir / "a.jpg"
    image = Image.open(path).convert("RGB")
    array = np.asarray(image)
    inputs = [
        str(path),
        path,
        path.read_bytes(),
        bytearray(path.read_bytes()),
        image,
        array,
        array.astype(np.float32) / 255,
        torch.from_numpy(array.copy()).permute(2, 0, 1),
        torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255,
    ]
    results = predictor.predict(inputs, workers=0)
    assert len(results) == len(inputs)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    reference = np.array([results[0].negative, results[0].neutral, results[0].positive])
    for r in results:
        probs = np.array([r.negative, r.neutral, r.positive])
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(probs, reference, atol=1e-4), r.source
    assert results[0].source == str(path)
    assert results[2].source.startswith("<bytes")


def test_single_input_and_4d_batch(predictor, photo_dir):
    assert len(predictor.predict(str(photo_dir / "a.jpg"))) == 1
    assert len(predictor.predict(torch.rand(5, 3, 40, 40), workers=0)) == 5


def test_single_and_batched_predictions_agree(predictor, photo_dir):
    files = sorted(str(p) for p in photo_dir.iterdir())
    batched = predictor.predict(files, batch_size=4, workers=2)
    one_by_one = [predictor.predict(f, workers=0)[0] for f in files]
    assert [r.source for r in batched] == files
    for a, b in zip(batched, one_by_one):
        assert a.label == b.label
        assert a.positive == pytest.approx(b.positive, abs=1e-5)
        assert a.negative == pytest.approx(b.negative, abs=1e-5)


def test_bad_inputs_become_error_rows_in_order(predictor, tmp_path, photo_dir):
    (tmp_path / "text.jpg").write_text("not an image")
    inputs = [str(photo_dir / "a.jpg"), str(tmp_path / "missing.png"), str(tmp_path / "text.jpg"), b"", str(photo_dir / "b.png")]
    results = predictor.predict(inputs, batch_size=2, workers=1)
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert "missing.png" in results[1].error
    assert "text.jpg" in results[2].error
    assert results[1].label is None and results[1].probabilities is None


def test_a_batch_with_only_bad_inputs(predictor):
    results = predictor.predict([b"x", b"y"], workers=0)
    assert [r.ok for r in results] == [False, False]


def test_iter_predict_streams_a_generator_in_order(predictor, tmp_path):
    paths = [make_photo(tmp_path / f"{i:03d}.png", seed=i, size=(20 + i % 7, 20)) for i in range(40)]
    consumed = []

    def gen():
        for p in paths:
            consumed.append(p)
            yield str(p)

    stream = predictor.iter_predict(gen(), batch_size=4, workers=2)
    first = next(stream)
    assert first.source == str(paths[0])
    assert len(consumed) < len(paths), "the input must be consumed lazily"
    rest = list(stream)
    assert [r.source for r in [first, *rest]] == [str(p) for p in paths]


def test_binary_protocol_never_says_neutral(predictor, photo_dir):
    files = sorted(str(p) for p in photo_dir.iterdir())
    for r in predictor.predict(files, binary=True, workers=0):
        assert r.label in ("negative", "positive")
        assert r.label == ("positive" if r.positive > r.negative else "negative")


def test_argument_validation(predictor):
    with pytest.raises(InvalidConfigError, match=r"batch_size must be an integer in \[1, 65536\], got 0"):
        predictor.predict(["x.jpg"], batch_size=0)
    with pytest.raises(InvalidConfigError, match=r"workers must be an integer in \[0, 1024\], got -1"):
        predictor.iter_predict(["x.jpg"], workers=-1)  # checked when called, before any work
    with pytest.raises(InvalidConfigError, match=r"min_confidence must be a probability in \[0, 1\], got 1.5"):
        predictor.iter_predict_batches(["x.jpg"], min_confidence=1.5)
    with pytest.raises(InvalidConfigError, match="tta must be True or False, got 'yes'"):
        predictor.predict(["x.jpg"], tta="yes")
    with pytest.raises(InvalidConfigError, match="Unknown option 'batchsize'. Valid options: batch_size, workers, binary"):
        predictor.predict(["x.jpg"], batchsize=8)
    with pytest.raises(InvalidConfigError, match="Invalid device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(InvalidConfigError, match="Invalid dtype 'int8'"):
        resolve_dtype("int8", torch.device("cpu"))
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32  # the same labels on every CPU
    if not torch.cuda.is_available():
        with pytest.raises(InvalidConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_bfloat16_on_cpu_stays_close(tiny_model_dir, photo_dir):
    files = sorted(str(p) for p in photo_dir.iterdir())
    fp32 = Predictor.from_pretrained(str(tiny_model_dir), device="cpu").predict(files, workers=0)
    bf16 = Predictor.from_pretrained(str(tiny_model_dir), device="cpu", dtype="bfloat16").predict(files, workers=0)
    for a, b in zip(fp32, bf16):
        assert a.positive == pytest.approx(b.positive, abs=0.03)


def test_module_level_predict_caches_the_predictor(tiny_model_dir, photo_dir):
    import imgsent
    from imgsent.quick import _cached_predictor

    imgsent.predict.cache_clear()
    assert _cached_predictor.cache_info().currsize == 0
    first = imgsent.predict(str(photo_dir / "a.jpg"), model=str(tiny_model_dir), device="cpu")
    second = imgsent.predict([str(photo_dir / "a.jpg")], model=str(tiny_model_dir), device="cpu", min_confidence=0.99)
    assert [p.probabilities for p in first] == [p.probabilities for p in second]
    assert second[0].label == "uncertain"  # every option of Predictor.predict reaches it
    assert _cached_predictor.cache_info().hits == 1
    imgsent.predict.cache_clear()  # the public way to free the loaded models
    assert _cached_predictor.cache_info().currsize == 0
    with pytest.raises(InvalidConfigError, match="Unknown option 'tempreature'"):
        imgsent.predict("a.jpg", tempreature=2)  # checked before any model is loaded
    assert _cached_predictor.cache_info().currsize == 0


def test_module_level_predict_takes_every_option_of_predictor_predict():
    import inspect

    import imgsent
    from imgsent.options import option_names

    method = inspect.signature(Predictor.predict).parameters
    function = inspect.signature(imgsent.predict).parameters
    shared = [name for name in method if name not in ("self", "images")]
    assert shared == ["options", *option_names()]
    for name in shared:
        assert function[name].default == method[name].default and function[name].kind is inspect.Parameter.KEYWORD_ONLY
    for streaming in (Predictor.iter_predict, Predictor.iter_predict_batches):
        assert list(inspect.signature(streaming).parameters)[2:] == shared


def test_one_constructor_and_a_docstring_help_shows(tiny_model_dir, monkeypatch):
    import pydoc

    built = []
    original = Predictor.__init__

    def spy(self, *args, **kwargs):
        built.append(args[0])
        original(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "__init__", spy)
    predictor = Predictor.from_pretrained(str(tiny_model_dir), device="cpu", backend="torch")
    assert built == [tiny_model_dir] and predictor.name == str(tiny_model_dir)
    monkeypatch.undo()
    text = pydoc.render_doc(Predictor, renderer=pydoc.plaintext)
    assert "Initialize self" not in text
    assert "Predict image polarity with a loaded model" in text and "Build the engine for ``model``" in text
    assert "batch_size: 'int' = 32" in text  # the options, shown from the one record


def test_a_loaded_model_and_its_folder_predict_the_same(tiny_model_dir, photo_dir):
    files = sorted(str(p) for p in photo_dir.iterdir())
    from_model = Predictor(SentimentModel.from_folder(tiny_model_dir), device="cpu", backend="torch")
    from_folder = Predictor(tiny_model_dir, device="cpu", backend="torch")
    assert from_model.name == "custom" and from_folder.model is from_folder.engine.model
    assert from_model.predict(files, workers=0) == from_folder.predict(files, workers=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu_within_bf16_tolerance(tiny_model_dir, photo_dir):
    files = sorted(str(p) for p in photo_dir.iterdir())
    cpu = Predictor.from_pretrained(str(tiny_model_dir), device="cpu").predict(files)
    gpu = Predictor.from_pretrained(str(tiny_model_dir), device="cuda").predict(files)
    for a, b in zip(cpu, gpu):
        assert a.positive == pytest.approx(b.positive, abs=0.03)


def test_default_model_predicts_offline_when_bundled(monkeypatch):
    from imgsent.hub import resolve_model_dir

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        folder = resolve_model_dir(None)
    except FileNotFoundError as exc:
        pytest.skip(f"no bundled default model in this checkout: {exc}")
    model = SentimentModel.from_folder(folder)
    image = Image.new("RGB", (300, 200), (200, 120, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    result = Predictor(model, device="cpu").predict(buffer.getvalue())[0]
    assert result.ok and result.label in ("negative", "neutral", "positive")


def test_iter_predict_batches_owns_the_pipeline(predictor, photo_dir):
    files = sorted(str(p) for p in photo_dir.iterdir()) + [str(photo_dir / "missing.jpg")]
    batches = list(predictor.iter_predict_batches(files, batch_size=2, workers=0))
    assert [len(b) for b in batches] == [2] * (len(files) // 2) + ([1] if len(files) % 2 else [])
    flat = [p for b in batches for p in b]
    assert [p.source for p in flat] == files
    assert not flat[-1].ok and "missing.jpg" in (flat[-1].error or "")
    assert flat[:-1] == predictor.predict(files[:-1], workers=0)


def test_tta_averages_the_image_and_its_mirror(predictor, photo_dir):
    path = photo_dir / "a.jpg"
    mirrored = Image.open(path).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    plain, flipped = predictor.predict([str(path), mirrored], workers=0)
    both = predictor.predict(str(path), tta=True, workers=0)[0]
    for name in ("negative", "neutral", "positive"):
        assert getattr(both, name) == pytest.approx((getattr(plain, name) + getattr(flipped, name)) / 2, abs=2e-4)


def test_thread_cap_is_scoped_to_the_forward_pass(tiny_model_dir, photo_dir, monkeypatch):
    import imgsent.predictor as predictor_module

    monkeypatch.setattr(predictor_module, "compute_threads", lambda device, workers, light, engine: 1)
    light = Predictor.from_pretrained(str(tiny_model_dir), device="cpu", backend="torch")  # torch threads
    before = torch.get_num_threads()
    seen = []
    original_forward = light.forward

    def spy(batch):
        seen.append(torch.get_num_threads())
        return original_forward(batch)

    light.forward = spy  # type: ignore[method-assign]
    files = sorted(str(p) for p in photo_dir.iterdir())
    for _ in light.iter_predict_batches(files, batch_size=1, workers=1):
        assert torch.get_num_threads() == before  # restored while the caller holds the batch
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before
