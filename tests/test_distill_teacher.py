from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from imgsent.distill.corpus import Post
from imgsent.distill.labels import LabeledPost, iter_label_cache, label_corpus, read_cache_header
from imgsent.distill.teacher import HFTeacher, Teacher, VaderTeacher, compound_to_proba
from imgsent.errors import ImgsentError, TeacherError
from imgsent.errors import CorpusError, MissingExtraError

WORDS = "good bad day night happy sad love hate the a is was very not great awful photo".split()


def _save_tiny_roberta(folder: Path, id2label: dict[int, str], seed: int = 0) -> Path:
    """A random-weight one-layer RoBERTa classifier and a word-level tokenizer, saved offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", mask_token="<mask>", model_max_length=32,
    )
    config = RobertaConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=40, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(seed)
    model = RobertaForSequenceClassification(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny_roberta(tmp_path_factory.mktemp("roberta"), {0: "negative", 1: "neutral", 2: "positive"})


TEXTS = ["good day", "a very very awful night not great", "love", "the photo was sad and unknownword",
         "happy happy happy happy happy happy happy happy happy happy happy happy happy happy happy happy"]


def test_hf_teacher_batching_matches_single(tiny_teacher_dir: Path) -> None:
    batched = HFTeacher(tiny_teacher_dir, batch_size=4, max_length=16)
    single = HFTeacher(tiny_teacher_dir, batch_size=1, max_length=16)
    assert isinstance(batched, Teacher)
    a, b = batched.predict_proba(TEXTS), single.predict_proba(TEXTS)
    assert a.shape == (len(TEXTS), 3) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.sum(dim=1), torch.ones(len(TEXTS)))
    assert batched.id == str(tiny_teacher_dir) and batched.revision.startswith("sha256:")
    assert batched.predict_proba([]).shape == (0, 3)


def test_hf_teacher_reorders_labels(tmp_path: Path, tiny_teacher_dir: Path) -> None:
    shuffled = _save_tiny_roberta(tmp_path / "m", {0: "Positive", 1: "NEGATIVE", 2: "neutral"})
    teacher = HFTeacher(shuffled, max_length=16)
    probs = teacher.predict_proba(TEXTS)
    with torch.inference_mode():
        enc = teacher.tokenizer(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
        raw = torch.softmax(teacher.model(**enc).logits, dim=-1)
    torch.testing.assert_close(probs, raw[:, [1, 2, 0]])


def test_hf_teacher_rejects_wrong_labels(tmp_path: Path) -> None:
    assert issubclass(TeacherError, ImgsentError) and issubclass(TeacherError, ValueError)
    wrong = _save_tiny_roberta(tmp_path / "wrong", {0: "sad", 1: "meh", 2: "happy"})
    with pytest.raises(TeacherError, match=r"labels \{0: 'sad', 1: 'meh', 2: 'happy'\}.*exactly"):
        HFTeacher(wrong)
    generic = _save_tiny_roberta(tmp_path / "generic", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(TeacherError, match="pass label_map="):
        HFTeacher(generic)
    mapping = {"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}
    assert HFTeacher(generic, label_map=mapping, max_length=16).predict_proba(["good"]).shape == (1, 3)
    with pytest.raises(TeacherError, match="exactly"):
        HFTeacher(generic, label_map={"LABEL_0": "negative", "LABEL_1": "negative", "LABEL_2": "positive"})


def test_vader_teacher() -> None:
    teacher = VaderTeacher()
    assert isinstance(teacher, Teacher) and teacher.id == "vader" and "band=0.3" in teacher.revision
    probs = teacher.predict_proba(["I love this, what a wonderful happy day!", "This is awful, I hate it.",
                                   "The train leaves at nine from platform two."])
    assert probs.shape == (3, 3) and probs.dtype == np.float32
    assert probs.argmax(axis=1).tolist() == [2, 0, 1]
    assert probs[2, 1] == pytest.approx(0.91, abs=0.01)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        compound_to_proba([0.0, 0.6, -0.6]), [[0.0453, 0.9094, 0.0453], [0.0, 0.0474, 0.9526], [0.9526, 0.0474, 0.0]],
        atol=1e-4,
    )
    # band at VADER's own +-0.05 thresholds makes the argmax VADER's classification
    assert compound_to_proba([0.04, 0.06, -0.06], band=0.05).argmax(axis=1).tolist() == [1, 2, 0]
    with pytest.raises(TeacherError, match="temperature must be > 0, got 0"):
        VaderTeacher(temperature=0)


def test_vader_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vaderSentiment" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'imgsent\[distill\]'"):
        VaderTeacher()


class _FakeTeacher:
    """Deterministic probabilities from the text length; can fail on a given call."""

    def __init__(self, revision: str = "1", fail_on_call: int | None = None) -> None:
        self.id, self.revision = "fake", revision
        self.fail_on_call, self.calls, self.seen = fail_on_call, 0, []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        self.seen.extend(texts)
        n = np.array([len(t) for t in texts], dtype=np.float64)
        logits = np.stack([np.sin(n), np.cos(n), np.sin(2 * n)], axis=1)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _posts(n: int) -> list[Post]:
    return [Post(f"p{i}", "x" * (i + 1), (f"/img/{i}.jpg",)) for i in range(n)]


def test_label_corpus_resumes_after_interruption(tmp_path: Path) -> None:
    cache = tmp_path / "labels.jsonl"
    with pytest.raises(KeyboardInterrupt):
        label_corpus(_posts(10), _FakeTeacher(fail_on_call=3), cache, batch_size=3)
    assert len(list(iter_label_cache(cache))) == 6
    with open(cache, "ab") as fh:  # a write torn half-way through a row
        fh.write(b'{"id": "p6", "images": ["/img/6.jpg"], "pro')
    progress: list[int] = []
    teacher = _FakeTeacher()
    report = label_corpus(_posts(10) + _posts(2), teacher, cache, batch_size=3, progress=progress.append)
    assert (report.cached, report.labelled) == (6, 4) and report.truncated_bytes > 0
    assert teacher.seen == ["x" * 7, "x" * 8, "x" * 9, "x" * 10] and progress == [3, 4]
    rows = list(iter_label_cache(cache))
    assert [r.id for r in rows] == [f"p{i}" for i in range(10)]
    expected = _FakeTeacher().predict_proba(["x" * (i + 1) for i in range(10)])
    np.testing.assert_allclose([r.probs for r in rows], expected, atol=1e-6)
    assert rows[3] == LabeledPost("p3", ("/img/3.jpg",), rows[3].probs)
    header = read_cache_header(cache)
    assert header["teacher"] == {"id": "fake", "revision": "1"}
    assert header["labels"] == ["negative", "neutral", "positive"]
    again = label_corpus(_posts(10), _FakeTeacher(), cache)
    assert (again.cached, again.labelled) == (10, 0)


def test_label_corpus_refuses_other_teacher_and_bad_output(tmp_path: Path) -> None:
    cache = tmp_path / "labels.jsonl"
    label_corpus(_posts(2), _FakeTeacher(revision="1"), cache)
    with pytest.raises(TeacherError, match="was written by .*'revision': '1'.*Use another cache path"):
        label_corpus(_posts(2), _FakeTeacher(revision="2"), cache)

    class Bad(_FakeTeacher):
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2))

    with pytest.raises(TeacherError, match=r"returned shape \(2, 2\)"):
        label_corpus(_posts(2), Bad(), tmp_path / "other.jsonl")
    damaged = tmp_path / "damaged.jsonl"
    lines = cache.read_text(encoding="utf-8").split("\n")
    damaged.write_text("\n".join([lines[0], "garbage", *lines[1:]]), encoding="utf-8")
    with pytest.raises(CorpusError, match="line 2 is damaged"):
        label_corpus(_posts(2), _FakeTeacher(revision="1"), damaged)
    with pytest.raises(CorpusError, match="not an imgsent teacher cache"):
        list(iter_label_cache(_write(tmp_path / "x.jsonl", "{}\n")))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_label_corpus_with_hf_teacher(tiny_teacher_dir: Path, tmp_path: Path) -> None:
    teacher = HFTeacher(tiny_teacher_dir, max_length=16)
    posts = [Post(str(i), t, (f"/i/{i}.jpg",)) for i, t in enumerate(TEXTS)]
    label_corpus(posts, teacher, tmp_path / "c.jsonl", batch_size=2)
    rows = list(iter_label_cache(tmp_path / "c.jsonl"))
    np.testing.assert_allclose([r.probs for r in rows], teacher.predict_proba(TEXTS).numpy(), atol=1e-5)
    assert json.loads((tmp_path / "c.jsonl").read_text().split("\n")[0])["teacher"]["id"] == str(tiny_teacher_dir)
