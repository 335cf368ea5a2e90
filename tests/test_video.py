"""Videos and animations: uniform sampling by seeking, per-file aggregates, frame records and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgsent.errors import InvalidConfigError, VideoDecodeError
from imgsent.outputs import COLUMNS, output_columns
from imgsent.predictor import Predictor
from imgsent.video import frames_at, is_media, may_hold_media, sample_frames, sample_times
from imgsent.video_outputs import FramePrediction, VideoPrediction, frame_path, split_frame_path
from tests.video_clips import (
    decode_all,
    make_audio_only,
    make_clip,
    make_gif,
    make_no_frames,
    pan_frames,
    patch_avi,
)

av = pytest.importorskip("av", reason="needs the video extra: pip install 'imgsent[video]'")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "pan.mp4", count=48, gop=12)  # 2 s, keyframe every 0.5 s
    make_clip(folder / "pan.webm", count=48, codec="libvpx-vp9")
    make_clip(folder / "short.mkv", count=5)
    make_clip(folder / "pan.avi", count=24, codec="mpeg4")
    make_gif(folder / "anim.gif", [100, 300, 100, 500, 100, 100, 100, 100, 100, 100])
    return folder


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", backend="torch")


def test_times_and_fragments() -> None:
    assert sample_times(2.0, 4) == [0.25, 0.75, 1.25, 1.75]
    assert frame_path("a b.mp4", 0.041667) == "a b.mp4#t=0.042"
    assert split_frame_path("clips/x.mp4#t=1.5") == ("clips/x.mp4", 1.5)
    assert split_frame_path("odd#t=name.jpg") == ("odd#t=name.jpg", None)
    assert output_columns() == COLUMNS and output_columns(frames=True, time=True)[-2:] == ("frames", "time")


@pytest.mark.parametrize("name", ["pan.mp4", "pan.webm", "pan.avi"])
def test_sampled_frames_are_the_frames_at_uniform_times(clips: Path, name: str) -> None:
    """Seeking gives exactly the frames a naive full decode shows at the sampled times."""
    every = decode_all(clips / name)
    sampled = sample_frames(clips / name, 8)
    duration = len(every) / 24
    assert len(sampled) == 8
    step = 1 / 24
    for frame, target in zip(sampled, sample_times(duration, 8)):
        index = next(i for i, (t, _) in enumerate(every) if t >= target - step / 2)
        assert frame.time == pytest.approx(every[index][0], abs=1e-6)
        assert np.array_equal(np.asarray(frame.image.convert("RGB")), every[index][1])


def test_fewer_frames_than_asked_gives_all(clips: Path) -> None:
    frames = sample_frames(clips / "short.mkv", 8)
    assert [f.time for f in frames] == pytest.approx([i / 24 for i in range(5)], abs=1e-3)  # Matroska: ms
    assert len(sample_frames(clips / "pan.mp4", 1)) == 1


def test_animation_sampled_by_display_time(clips: Path) -> None:
    """Frames of a GIF are chosen by when they are shown (their delays), and an animation with fewer gives all."""
    frames = sample_frames(clips / "anim.gif", 4)  # 1.6 s; targets 0.2, 0.6, 1.0, 1.4
    assert [f.time for f in frames] == pytest.approx([0.1, 0.5, 1.0, 1.4])
    with Image.open(clips / "anim.gif") as gif:
        gif.seek(4)  # starts 0, .1, .4, .5, 1.0: the frame shown at 1.0 s
        assert np.array_equal(np.asarray(frames[2].image.convert("RGB")), np.asarray(gif.convert("RGB")))
    assert len(sample_frames(clips / "anim.gif", 50)) == 10
    assert [f.time for f in frames_at(clips / "anim.gif", [0.5, 1.0])] == pytest.approx([0.5, 1.0])


def test_is_media(clips: Path, tmp_path: Path) -> None:
    still = tmp_path / "still.gif"
    Image.new("RGB", (8, 8)).save(still)
    assert is_media(clips / "pan.mp4") and is_media(str(clips / "anim.gif"))
    assert not is_media(still) and not is_media(b"GIF89a") and not is_media("examples/images/coffee_cup.jpg")
    assert may_hold_media(["a.jpg", "b.GIF"]) and not may_hold_media(["a.jpg", "b.png", "c.webp"])


def test_video_is_the_mean_of_its_frames_classified_as_images(clips: Path, predictor: Predictor, tmp_path: Path) -> None:
    video = predictor.predict_video(clips / "pan.mp4", frames=6)
    assert isinstance(video, VideoPrediction) and video.ok and len(video.frame_predictions) == 6 == video.frames
    paths = []
    for i, frame in enumerate(sample_frames(clips / "pan.mp4", 6)):
        frame.image.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    as_images = predictor.predict(paths)
    for frame, image in zip(video.frame_predictions, as_images):
        assert isinstance(frame, FramePrediction) and frame.source == frame_path(str(clips / "pan.mp4"), frame.time)
        assert frame.label == image.label
        assert frame.positive == pytest.approx(image.positive, abs=1e-6)
    for k, name in enumerate(("negative", "neutral", "positive")):
        assert getattr(video, name) == pytest.approx(np.mean([getattr(p, name) for p in as_images]), abs=1e-6)
    assert video.to_row()["frames"] == 6 and video.frame_predictions[0].to_row()["time"] is not None


def test_predict_keeps_order_and_gives_aggregates(clips: Path, predictor: Predictor) -> None:
    inputs = ["examples/images/coffee_cup.jpg", str(clips / "anim.gif"), str(clips / "pan.webm"), "missing.mp4"]
    out = predictor.predict(inputs)
    assert [p.source for p in out] == inputs
    assert type(out[0]).__name__ == "Prediction"
    assert isinstance(out[1], VideoPrediction) and len(out[1].frame_predictions) == 5  # 8 times, 5 distinct frames (long delays)
    assert out[2].positive == pytest.approx(predictor.predict_video(clips / "pan.webm").positive, abs=1e-6)
    assert not out[3].ok and "no such file" in (out[3].error or "")
    with pytest.raises(InvalidConfigError, match="frames must be an int >= 1, got 0"):
        predictor.predict_video(clips / "pan.mp4", frames=0)


def test_predict_video_takes_the_one_options_record(clips: Path, predictor: Predictor) -> None:
    import inspect

    from imgsent.options import PredictOptions, option_names

    params = inspect.signature(predictor.predict_video).parameters
    assert set(option_names()) <= set(params) and params["batch_size"].default == 32
    video = predictor.predict_video(clips / "pan.mp4", frames=4, options=PredictOptions(binary=True), batch_size=2)
    assert video.label in ("negative", "positive") and video.frames == 4
    strict = predictor.predict_video(clips / "pan.mp4", frames=4, min_confidence=1.0)
    assert strict.label == "uncertain" and all(f.label == "uncertain" for f in strict.frame_predictions)
    with pytest.raises(InvalidConfigError, match="Unknown option 'batchsize'. Valid options: batch_size"):
        predictor.predict_video(clips / "pan.mp4", batchsize=2)
    with pytest.raises(InvalidConfigError, match="max_pixels must be an integer"):
        predictor.iter_predict([str(clips / "pan.mp4")], max_pixels=0)  # checked when called, not at the first item


@pytest.fixture(scope="module")
def bad(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    whole = (clips / "pan.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    mkv = make_clip(folder / "whole.mkv", count=120, size=(96, 64))
    (folder / "truncated.mkv").write_bytes(mkv.read_bytes()[: mkv.stat().st_size * 2 // 3])
    mkv.unlink()
    (folder / "corrupt.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + bytes(range(256)) * 8)
    raw = make_clip(folder / "raw.avi", count=6, codec="rawvideo")
    patch_avi(raw, folder / "huge.avi", size=(100000, 100000))
    patch_avi(clips / "pan.avi", folder / "codec.avi", fourcc=b"QQQQ")
    raw.unlink()
    return {
        "truncated.mp4": folder / "truncated.mp4",
        "truncated.mkv": folder / "truncated.mkv",
        "corrupt.mov": folder / "corrupt.mov",
        "audio.mp4": make_audio_only(folder / "audio.mp4"),
        "empty.avi": make_no_frames(folder / "empty.avi"),
        "empty.mkv": make_no_frames(folder / "empty.mkv", codec="libx264"),
        "huge.avi": folder / "huge.avi",
        "codec.avi": folder / "codec.avi",
    }


@pytest.mark.parametrize(("name", "message"), [
    ("truncated.mp4", "FFmpeg says 'Invalid data found when processing input' \\(truncated, corrupt"),
    ("truncated.mkv", "the stream ends before .* though its header says it lasts 5.000 s \\(truncated or corrupt\\)"),
    ("corrupt.mov", "FFmpeg says .*truncated, corrupt, not a video"),
    ("audio.mp4", "no video stream \\(streams: audio\\): audio only"),
    ("empty.avi", "its video stream holds no frames"),
    ("empty.mkv", "the file ends before its first frame \\(empty, or truncated\\)"),
    ("huge.avi", "FFmpeg says 'Invalid data found when processing input'.*header with impossible values"),
    ("codec.avi", "no decoder for its video codec. Re-encode it"),
])
def test_bad_files_raise_typed_errors_that_say_why(bad: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(VideoDecodeError, match=message):
        sample_frames(bad[name], 8)


def test_bad_files_are_error_rows_and_the_rest_goes_on(bad: dict[str, Path], clips: Path, predictor: Predictor) -> None:
    out = predictor.predict([*map(str, bad.values()), str(clips / "pan.mp4")])
    assert [p.ok for p in out] == [False] * len(bad) + [True]
    assert all(isinstance(p, VideoPrediction) and p.frame_predictions == () and p.frames is None and p.to_row()["frames"] is None for p in out[:-1])


def test_pixel_limit_is_checked_from_the_header(clips: Path) -> None:
    with pytest.raises(VideoDecodeError, match="its frames are 64x48 \\(3072 pixels\\), more than max_pixels=3000"):
        sample_frames(clips / "pan.mp4", 8, max_pixels=3000)
    with pytest.raises(VideoDecodeError, match="its frames are 40x30 \\(1200 pixels\\), more than max_pixels=1000"):
        sample_frames(clips / "anim.gif", 8, max_pixels=1000)


def test_decoding_budget_bounds_streams_without_keyframes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream with one keyframe is decoded forward once, not once per sample; past the budget it is refused."""
    import imgsent.video as video

    clip = make_clip(tmp_path / "onegop.mp4", count=96, gop=1000)
    counted: list[int] = []
    original = video._VideoSampler.run

    def run(self, times):  # type: ignore[no-untyped-def]
        try:
            return original(self, times)
        finally:
            counted.append(self.decoded)

    monkeypatch.setattr(video._VideoSampler, "run", run)
    assert len(sample_frames(clip, 8)) == 8
    assert counted[-1] <= 96 + 2 * 12  # one pass, plus at most two re-seeks to the only keyframe
    monkeypatch.setattr(video, "MAX_DECODED_FRAMES", 50)
    with pytest.raises(VideoDecodeError, match="more than 50 frames would have to be decoded"):
        sample_frames(clip, 8)


def test_pan_frames_differ() -> None:
    frames = pan_frames(4)
    assert not np.array_equal(frames[0], frames[1])


def test_decoding_budget_bounds_animations(clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imgsent.video as video

    monkeypatch.setattr(video, "MAX_DECODED_FRAMES", 5)
    with pytest.raises(VideoDecodeError, match="it has 10 frames, more than the 5 that may be decoded"):
        sample_frames(clips / "anim.gif", 8)
