"""Ray Data: classify images and label texts on a cluster, one model per actor.

Both functions add a ``map_batches`` stage with a callable class to a :class:`ray.data.Dataset`
and return the new, lazy dataset: nothing runs until it is consumed (``write_csv``,
``iter_batches``, ``take``...). Each actor loads its model once and then serves batch after
batch; ``concurrency`` actors run side by side, each reserving ``num_gpus`` and ``num_cpus``.
An input that cannot be read becomes a row with ``error`` set, never a failed task.

Needs ``pip install 'imgsent[ray]'``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from imgsent.errors import InvalidConfigError, require_extra
from imgsent.options import PredictOptions
from imgsent.outputs import RESULT_COLUMNS, Prediction, output_columns
from imgsent.video import check_frames
from imgsent.video_predict import iter_in_order

if TYPE_CHECKING:
    import pyarrow
    import ray.data

    from imgsent.distill.teacher import Teacher


def classify(
    dataset: ray.data.Dataset,
    model: str | os.PathLike[str] = "default",
    *,
    column: str = "path",
    path_column: str | None = "path",
    batch_size: int = 32,
    concurrency: int = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
    binary: bool = False,
    frames: int = 8,
    frame_rows: bool = False,
    **predictor_options: Any,
) -> ray.data.Dataset:
    """Classify the images of a Ray dataset; rows come out as ``imgsent classify`` writes them.

    Args:
        dataset: Rows with an image column: file paths (strings), or encoded image bytes as
            from ``ray.data.read_binary_files(..., include_paths=True)``.
        model: ``"default"`` for the bundled model, a known name, a local folder or a Hub repo
            id; every actor must be able to reach it (a shared folder or the Hub).
        column: The image column: ``"path"`` (default) or a bytes column such as ``"bytes"``.
        path_column: Column copied to the output ``path`` when ``column`` holds bytes (default
            ``"path"``, when present); otherwise ``path`` is a short description of the input.
        batch_size: Rows per call of an actor, and images per forward pass. Default 32.
        concurrency: Number of actors, each with its own model. Default 1.
        num_gpus: GPUs reserved per actor (``1`` puts one actor on each GPU; the model then
            runs on ``cuda``). Default 0.
        num_cpus: CPUs reserved per actor; also its compute threads, whichever the engine (torch,
            ONNX Runtime or OpenVINO). Default 1.
        binary: Drop neutral and compare negative with positive (the paper's protocol).
        frames: Frames sampled per video or animated GIF, WebP or PNG (given by path); its row
            holds their mean and the ``frames`` column their number. Default 8.
        frame_rows: Also one row per sampled frame (path ``<file>#t=<seconds>``, ``time`` column),
            just before its file's row, as ``imgsent classify --frame-rows``.
        **predictor_options: Passed to :meth:`imgsent.Predictor.from_pretrained`: ``revision``,
            ``device``, ``dtype``, ``cache_dir``, ``token``, ``local_files_only``.

    Returns:
        A lazy dataset with the CSV's columns (``path``, ``label``, ``confidence``, ``negative``,
        ``neutral``, ``positive``, ``error``, ``frames``, and ``time`` with ``frame_rows``), one row
        per input (plus the frame rows).

    Raises:
        MissingExtraError: Ray is not installed.
        InvalidConfigError: An option is out of range or ``column`` is missing.

    Example:
        >>> import ray, imgsent.integrations.ray as imgsent_ray   # doctest: +SKIP
        >>> paths = ray.data.from_items([{"path": p} for p in ["beach.jpg", "missing.jpg"]])  # doctest: +SKIP
        >>> imgsent_ray.classify(paths, dtype="float32").take_all()  # doctest: +SKIP
        [{'path': 'beach.jpg', 'label': 'positive', 'negative': 0.03, ..., 'error': None},
         {'path': 'missing.jpg', 'label': None, 'negative': None, ..., 'error': 'missing.jpg: no such file'}]
    """
    _check(dataset, column, batch_size, concurrency, num_gpus, num_cpus)
    check_frames(frames)
    if num_gpus > 0:
        predictor_options.setdefault("device", "cuda")
    import ray.data

    return dataset.map_batches(
        _Classifier,
        fn_constructor_kwargs={
            "model": None if str(model) == "default" else os.fspath(model),
            "options": predictor_options,
            "column": column,
            "path_column": path_column,
            "batch_size": batch_size,
            "binary": binary,
            "threads": max(1, int(num_cpus)),
            "frames": frames,
            "frame_rows": frame_rows,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        udf_modifying_row_count=frame_rows,
    )


def label(
    dataset: ray.data.Dataset,
    teacher: str | Callable[[], Teacher] = "vader",
    *,
    column: str = "text",
    teacher_options: Mapping[str, Any] | None = None,
    batch_size: int = 256,
    concurrency: int = 1,
    num_gpus: float = 0,
    num_cpus: float = 1,
) -> ray.data.Dataset:
    """Run the distillation teacher over a ``text`` column; each actor loads the teacher once.

    Args:
        dataset: Rows with a text column (other columns, e.g. ``id`` and ``images``, pass through).
        teacher: ``"vader"``, a Transformers model id or folder for
            :class:`~imgsent.distill.teacher.HFTeacher`, or a function with no arguments that
            returns a :class:`~imgsent.distill.teacher.Teacher` (called once per actor).
        column: The text column. Default ``"text"``.
        teacher_options: Keyword arguments for the teacher class (e.g. ``{"device": "cuda"}``).
        batch_size: Texts per call of an actor. Default 256.
        concurrency: Number of actors. Default 1.
        num_gpus: GPUs reserved per actor. Default 0.
        num_cpus: CPUs reserved per actor. Default 1.

    Returns:
        The dataset with ``negative``, ``neutral``, ``positive`` (the teacher's probabilities,
        float64 as in the label cache), ``label`` and ``error`` added. A text that is empty or
        not a string gets ``error`` set and nulls for the rest.

    Raises:
        MissingExtraError: Ray is not installed.
        InvalidConfigError: An option is out of range or ``column`` is missing.

    Example:
        >>> posts = ray.data.read_json("corpus.jsonl")  # doctest: +SKIP
        >>> imgsent_ray.label(posts, "vader").select_columns(["id", "label"]).take(1)  # doctest: +SKIP
        [{'id': '0001', 'label': 'positive'}]
    """
    _check(dataset, column, batch_size, concurrency, num_gpus, num_cpus)
    if not (isinstance(teacher, str) or callable(teacher)):
        raise InvalidConfigError(
            f"teacher must be 'vader', a Transformers model id or folder, or a function returning a teacher; got {teacher!r}."
        )
    import ray.data

    return dataset.map_batches(
        _Labeler,
        fn_constructor_kwargs={"teacher": teacher, "options": dict(teacher_options or {}), "column": column},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        udf_modifying_row_count=False,
    )


def _check(dataset: Any, column: str, batch_size: int, concurrency: int, num_gpus: float, num_cpus: float) -> None:
    """Validate the options and the dataset's schema before anything is scheduled."""
    require_extra("ray", "ray")
    if batch_size < 1 or concurrency < 1 or num_gpus < 0 or num_cpus < 0:
        raise InvalidConfigError(
            f"batch_size and concurrency must be >= 1 and num_gpus, num_cpus >= 0; got batch_size={batch_size}, "
            f"concurrency={concurrency}, num_gpus={num_gpus}, num_cpus={num_cpus}."
        )
    names = _column_names(dataset)
    if names is not None and column not in names:
        raise InvalidConfigError(f"The dataset has no {column!r} column; its columns are {names}. Pass column=...")


def _column_names(dataset: Any) -> list[str] | None:
    try:
        schema = dataset.schema(fetch_if_missing=False)
    except Exception:  # noqa: BLE001 - a schema we cannot see is checked when the data flows
        return None
    return None if schema is None else list(schema.names)


class _Classifier:
    """A Ray actor: loads the Predictor once, then turns batches of images into output rows."""

    def __init__(
        self, model: str | None, options: dict[str, Any], column: str, path_column: str | None,
        batch_size: int, binary: bool, threads: int, frames: int = 8, frame_rows: bool = False,
    ) -> None:
        from imgsent.predictor import Predictor
        from imgsent.runtime import set_worker_threads

        set_worker_threads(threads)  # before loading: the torch network is built with these threads
        self.predictor = Predictor.from_pretrained(model, **options)
        set_worker_threads(threads, self.predictor.engine)  # ONNX Runtime and OpenVINO keep their own threads
        self.column, self.path_column = column, path_column
        self.options = PredictOptions(batch_size=batch_size, workers=0, binary=binary)
        self.frames, self.frame_rows = frames, frame_rows
        self.columns = list(output_columns(frames=True, time=frame_rows))

    def __call__(self, batch: dict[str, Any]) -> pyarrow.Table:
        images = [_plain(value) for value in batch[self.column]]
        try:
            predictions = list(iter_in_order(self.predictor, images, self.options, frames=self.frames))
        except Exception:  # noqa: BLE001 - one bad input must not fail the batch: retry one by one
            predictions = [self._one(image) for image in images]
        rows = [p.to_row() for p in predictions]
        if self.column != "path" and self.path_column and self.path_column in batch:
            for row, name in zip(rows, batch[self.path_column]):
                row["path"] = str(name)
        if self.frame_rows:  # each video's frame rows just before its own row
            rows = [r for p, row in zip(predictions, rows) for r in (*_frame_rows(p), row)]
        return _table(rows, self.columns)

    def _one(self, image: Any) -> Prediction:
        from imgsent.images import describe_source

        try:
            return next(iter_in_order(self.predictor, [image], self.options, frames=self.frames))
        except Exception as exc:  # noqa: BLE001 - reported in the row
            return Prediction.failed(describe_source(image), f"{type(exc).__name__}: {exc}")


class _Labeler:
    """A Ray actor: builds the teacher once, then adds its probabilities to batches of texts."""

    def __init__(self, teacher: str | Callable[[], Teacher], options: dict[str, Any], column: str) -> None:
        if callable(teacher):
            self.teacher = teacher()
        elif teacher == "vader":
            from imgsent.distill.teacher import VaderTeacher

            self.teacher = VaderTeacher(**options)
        else:
            from imgsent.distill.teacher import HFTeacher

            self.teacher = HFTeacher(teacher, **options)
        self.column = column

    def __call__(self, batch: dict[str, Any]) -> pyarrow.Table:
        import numpy as np
        import pyarrow as pa

        from imgsent.config import LABELS

        texts = [_plain(t) for t in batch[self.column]]
        good = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        probs = np.full((len(texts), 3), np.nan)
        if good:
            raw = self.teacher.predict_proba([texts[i] for i in good])
            probs[good] = np.asarray(raw.detach().cpu() if hasattr(raw, "detach") else raw, dtype=np.float64)
        ok = np.isfinite(probs).all(axis=1)
        out = {name: pa.array([_plain(v) for v in values]) for name, values in batch.items()}
        for k, name in enumerate(LABELS):
            out[name] = pa.array(probs[:, k], mask=~ok)
        out["label"] = pa.array([LABELS[int(np.argmax(p))] if o else None for p, o in zip(probs, ok)], pa.string())
        out["error"] = pa.array(
            [None if o else f"{self.column} is empty or not a string: {str(t)[:40]!r}" for t, o in zip(texts, ok)],
            pa.string(),
        )
        return pa.table(out)


def _frame_rows(prediction: Prediction) -> list[dict[str, Any]]:
    from imgsent.video_outputs import VideoPrediction

    return [frame.to_row() for frame in prediction.frame_predictions] if isinstance(prediction, VideoPrediction) else []


def _plain(value: Any) -> Any:
    """numpy scalars from a Ray batch as Python values (``np.str_`` -> ``str``, ``np.bytes_`` -> ``bytes``)."""
    import numpy as np

    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, np.bytes_):
        return bytes(value)
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1:
        return value.tobytes()
    return value


def _table(rows: list[dict[str, Any]], columns: list[str]) -> pyarrow.Table:
    """Rows as an Arrow table with fixed types from :data:`~imgsent.outputs.RESULT_COLUMNS`, nulls when empty."""
    import pyarrow as pa

    arrow = {"probability": pa.float64(), "seconds": pa.float64(), "count": pa.int64(), "text": pa.string()}
    kinds = {column.name: column.kind for column in RESULT_COLUMNS}
    fields = [pa.field(c, arrow[kinds[c]]) for c in columns]
    return pa.Table.from_pydict({c: [row.get(c) for row in rows] for c in columns}, schema=pa.schema(fields))


__all__ = ["classify", "label"]
