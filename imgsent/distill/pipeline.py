"""The distillation pipeline: corpus -> dedup -> teacher labels -> selection -> training -> evaluation -> export.

Each stage writes into its own folder under the run's work directory and records a
fingerprint of everything it depends on (its recipe sections and the stages before it)
in ``done.json``. Re-running skips a stage whose fingerprint matches; a stage whose inputs
changed is redone, along with everything after it. Teacher labelling and training also
resume *inside* the stage after an interruption.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imgsent.distill.recipe import Recipe
from imgsent.distill.stagefiles import _read_posts, _write_lines, _write_posts
from imgsent.errors import InvalidConfigError

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]


@dataclass
class StageResult:
    """The outcome of one stage: whether it ran or was already done, and its summary."""

    name: str
    skipped: bool
    summary: dict[str, Any] = field(default_factory=dict)


class DistillRun:
    """Run a :class:`~imgsent.distill.recipe.Recipe` stage by stage in a work directory.

    Args:
        recipe: The recipe.
        workdir: Folder for every stage's outputs (created if needed).
        log: Called with one line per event (the CLI prints it on stderr).
        on_progress: Called with ``(stage, done, total)`` during long passes (the dedup embedding pass).
        on_train_step: Passed to :func:`~imgsent.distill.trainer.train_student` as ``on_step`` (rank 0 only).
        on_train_epoch: Passed to :func:`~imgsent.distill.trainer.train_student` as ``on_epoch`` (rank 0 only).

    Example:
        >>> run = DistillRun(load_recipe("recipes/default.yaml"), "runs/default")  # doctest: +SKIP
        >>> [r.name for r in run.run()]  # doctest: +SKIP
        ['ingest', 'dedup', 'label', 'select', 'train', 'evaluate', 'export']
    """

    def __init__(self, recipe: Recipe, workdir: str | os.PathLike[str], *, log: Log | None = None,
                 on_train_step: Callable[[Any], None] | None = None,
                 on_train_epoch: Callable[[Any], None] | None = None, on_progress: Progress | None = None) -> None:
        self.recipe = recipe
        self.on_progress = on_progress
        self.workdir = Path(workdir)
        self.log = log or (lambda line: None)
        self.on_train_step, self.on_train_epoch = on_train_step, on_train_epoch

    def run(self, *, until: str | None = None, only: str | None = None) -> list[StageResult]:
        """Run stages in order, skipping those already done with the same inputs.

        Args:
            until: Stop after this stage.
            only: Run just this stage (its predecessors must be done).

        Returns:
            One :class:`StageResult` per stage considered.
        """
        for name in (until, only):
            if name is not None and name not in STAGES:
                raise InvalidConfigError(f"Unknown stage {name!r}. Stages: {', '.join(STAGES)}.")
        if _world_size() > 1 and only != "train":
            raise InvalidConfigError(
                "Under torchrun only the train stage runs on every process. Run the other stages once without "
                "torchrun (`imgsent distill run RECIPE --until select`), then "
                "`torchrun --nproc_per_node N -m imgsent distill stage train RECIPE`."
            )
        results = []
        for name in STAGES:
            if only is not None and name != only:
                if STAGES.index(name) < STAGES.index(only) and not self._is_done(name):
                    raise InvalidConfigError(f"Stage {only!r} needs stage {name!r} first: run `imgsent distill run` --until {name}.")
                continue
            results.append(self._stage(name))
            if name in (until, only):
                break
        return results

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def folder(self, stage: str) -> Path:
        """The stage's output folder."""
        return self.workdir / stage

    def fingerprint(self, stage: str) -> str:
        """Hash of the stage's recipe sections and of every earlier stage's fingerprint."""
        digest = hashlib.sha256()
        for name in STAGES[: STAGES.index(stage) + 1]:
            sections = [s for s in STAGE_TABLE[name].sections if s != "name"]
            digest.update(self.recipe.section_json(*sections).encode())
            if "name" in STAGE_TABLE[name].sections:
                digest.update(self.recipe.name.encode())
        return digest.hexdigest()

    def _is_done(self, stage: str) -> bool:
        marker = self.folder(stage) / "done.json"
        if not marker.is_file():
            return False
        try:
            return json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == self.fingerprint(stage)
        except (json.JSONDecodeError, OSError):
            return False

    def _stage(self, name: str) -> StageResult:
        if _rank() != 0:  # other ranks of a torchrun job only take part in training, once rank 0 has set up
            _wait_for(self.folder(name) / "started.json", self.fingerprint(name))
            return StageResult(name, False, STAGE_TABLE[name].run(self, self.folder(name)))
        folder = self.folder(name)
        marker = folder / "done.json"
        if self._is_done(name):
            summary = json.loads(marker.read_text(encoding="utf-8")).get("summary", {})
            self.log(f"{name}: already done, skipped")
            return StageResult(name, True, summary)
        started = folder / "started.json"
        fingerprint = self.fingerprint(name)
        if folder.exists():
            previous = _read_json(started).get("fingerprint")
            if previous != fingerprint:  # inputs changed: start this stage afresh
                shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(started, {"fingerprint": fingerprint})
        self.log(f"{name}: running")
        summary = STAGE_TABLE[name].run(self, folder)
        _write_json(marker, {"fingerprint": fingerprint, "summary": summary})
        self.log(f"{name}: done {json.dumps(_brief(summary), default=str)}")
        return StageResult(name, False, summary)

    # -- stages ----------------------------------------------------------------------------------------------

    def _run_ingest(self, folder: Path) -> dict[str, Any]:
        from imgsent.distill.corpus import read_corpus

        c = self.recipe.corpus
        reader = read_corpus(c.path, format=c.format, lang=c.lang, min_words=c.min_words,  # type: ignore[arg-type]
                             drop_references=c.drop_references, image_root=c.image_root)
        posts = iter(reader)
        if c.max_posts is not None:
            posts = (p for i, p in zip(range(c.max_posts), posts))
        if c.fetch:
            posts = self._fetch(list(posts), folder)
        count = _write_posts(folder / "posts.jsonl", posts)
        return {"corpus": reader.report.to_dict(), "posts": count}

    def _fetch(self, posts: list[Any], folder: Path) -> Iterator[Any]:
        from imgsent.distill.fetch import fetch_images, localize_posts

        urls = sorted({i for p in posts for i in p.images if i.startswith(("http://", "https://"))})
        report = fetch_images(urls, folder / "images")
        self.log(f"ingest: fetched {len(report.paths)}/{len(urls)} images; failures {dict(report.failures)}")
        return iter(localize_posts(posts, report))

    def _run_dedup(self, folder: Path) -> dict[str, Any]:
        from imgsent.distill.dedup import apply_dedup, deduplicate, iter_groups

        d = self.recipe.dedup
        source = self.folder("ingest") / "posts.jsonl"  # streamed twice: the posts are never all in memory
        paths = list(dict.fromkeys(i for p in _read_posts(source) for i in p.images
                                   if not i.startswith(("http://", "https://"))))
        if d.exact or d.near:
            embed, key = self._embedder() if d.near else (None, "")
            progress = self.on_progress
            report = deduplicate(paths, embed=embed, threshold=d.threshold, search=d.search, batch_size=d.batch_size,
                                 workdir=folder / "embeddings", model_key=key, nlist=d.nlist, nprobe=d.nprobe,
                                 memory_gb=d.memory_gb,
                                 progress=(lambda done, total: progress("dedup", done, total)) if progress else None)
            kept_posts = apply_dedup(_read_posts(source), report)
            _write_lines(folder / "removed.jsonl", (asdict(r) for r in report.removed))
            _write_lines(folder / "groups.jsonl", iter_groups(report))
            summary = report.summary()
        else:
            kept_posts, summary = _read_posts(source), {"kept": len(paths), "removed_exact": 0, "removed_near": 0}
        summary["posts"] = _write_posts(folder / "posts.jsonl", kept_posts)
        return summary

    def _embedder(self) -> tuple[Callable[[list[str]], Any], str]:
        """The student's ImageNet backbone as dedup's embedder, saved once as a model folder in the stage.

        A rerun (after an interruption) loads the folder's cached features export directly,
        without building the torch network.
        """
        from imgsent.config import CONFIG_NAME
        from imgsent.distill.features import engine_embedder

        folder = self.folder("dedup") / "embedder"
        if not (folder / CONFIG_NAME).is_file():
            from imgsent.distill.backbones import load_imagenet_backbone

            model = self._new_student()
            load_imagenet_backbone(model)
            staging = folder.with_name(folder.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            model.save_pretrained(staging)
            os.replace(staging, folder)
        return engine_embedder(folder, backend=self.recipe.dedup.backend, batch_size=self.recipe.dedup.batch_size)

    def _run_label(self, folder: Path) -> dict[str, Any]:
        from imgsent.distill.labels import label_corpus

        teacher = self._teacher()
        posts = _read_posts(self.folder("dedup") / "posts.jsonl")
        report = label_corpus(posts, teacher, folder / "labels.jsonl", batch_size=self.recipe.teacher.batch_size,
                              progress=lambda n: self.log(f"label: {n} posts labelled") if n % 10000 == 0 else None)
        return asdict(report)

    def _teacher(self) -> Any:
        t = self.recipe.teacher
        if t.kind == "vader":
            from imgsent.distill.teacher import VaderTeacher

            return VaderTeacher(band=t.band, temperature=t.temperature)
        from imgsent.distill.teacher import HFTeacher
        from imgsent.runtime import resolve_device

        return HFTeacher(t.model, revision=t.revision, device=str(resolve_device("auto")))

    def _run_select(self, folder: Path) -> dict[str, Any]:
        from imgsent.distill.labels import iter_label_cache, read_cache_header
        from imgsent.distill.select import Thresholds, select_samples, write_selection

        s = self.recipe.selection
        cache = self.folder("label") / "labels.jsonl"
        selection = select_samples(iter_label_cache(cache), thresholds=Thresholds(**s.thresholds), balance=s.balance,
                                   val_fraction=s.val_fraction, seed=s.seed)
        write_selection(selection, folder, teacher=read_cache_header(cache).get("teacher"))
        for warning in selection.warnings:
            self.log(f"select: warning: {warning}")
        return selection.summary()

    def _new_student(self) -> Any:
        from imgsent.config import ArchitectureConfig, ModelConfig, PreprocessConfig
        from imgsent.models.sentiment import SentimentModel
        from imgsent.registry import get_architecture

        st = self.recipe.student
        spec = get_architecture(st.architecture)
        size = st.image_size or spec.default_image_size
        preprocess = PreprocessConfig(image_size=size, resize_mode=st.resize_mode,  # type: ignore[arg-type]
                                      interpolation=st.interpolation)  # type: ignore[arg-type]
        return SentimentModel(ModelConfig(ArchitectureConfig(st.architecture, dict(st.args)), preprocess))

    def _run_train(self, folder: Path) -> dict[str, Any]:
        import torch

        from imgsent.distill.records import read_rows
        from imgsent.distill.trainer import train_student

        config = self.recipe.train
        torch.manual_seed(config.seed)
        model = self._new_student()
        if self.recipe.student.pretrained:
            from imgsent.distill.backbones import load_imagenet_backbone

            load_imagenet_backbone(model)
        selection = self.folder("select")
        # resume=True continues from the newest checkpoint of an interrupted run, or starts fresh.
        val = read_rows(selection / "val.jsonl")
        result = train_student(model, read_rows(selection / "train.jsonl"), val,
                               config, folder, resume=True, on_step=self.on_train_step,
                               on_epoch=self.on_train_epoch)
        if _rank() == 0 and val:
            from imgsent.calibration import calibrate_model_folder

            calibrate_model_folder(result.model_dir, [r.path for r in val], [r.label for r in val])
        return {"model_dir": str(result.model_dir), "steps": result.steps, "best_epoch": result.best_epoch,
                "bad_images": len(result.bad_images), "history": [asdict(m) for m in result.history]}

    def _run_evaluate(self, folder: Path) -> dict[str, Any]:
        e = self.recipe.evaluate
        if e.labels is None:
            return {"skipped": "no evaluate.labels in the recipe"}
        from imgsent.evaluate import evaluate_labels
        from imgsent.predictor import Predictor

        predictor = Predictor.from_pretrained(_read_json(self.folder("train") / "done.json")["summary"]["model_dir"],
                                              dtype="float32")
        report = evaluate_labels(predictor, e.labels, images_root=e.images_root, tta=e.tta)
        (folder / "metrics.json").write_text(report.to_json() + "\n", encoding="utf-8")
        return {m.name: {"n": m.n, "accuracy": m.accuracy, "macro_f1": m.macro_f1} for m in report.subsets}

    def _run_export(self, folder: Path) -> dict[str, Any]:
        import torch

        import imgsent
        from imgsent.distill.export import export_model
        from imgsent.distill.labels import read_cache_header
        from imgsent.models.sentiment import SentimentModel

        train = _read_json(self.folder("train") / "done.json")["summary"]
        model = SentimentModel.from_folder(train["model_dir"])
        last = train["history"][-1] if train["history"] else {}
        evaluation = _read_json(self.folder("evaluate") / "done.json").get("summary", {})
        provenance = {
            "imgsent_version": imgsent.__version__,
            "teacher": read_cache_header(self.folder("label") / "labels.jsonl").get("teacher"),
            "corpus": _read_json(self.folder("ingest") / "done.json")["summary"]["corpus"],
            "dedup": _brief(_read_json(self.folder("dedup") / "done.json")["summary"]),
            "selection": _read_json(self.folder("select") / "done.json")["summary"].get("counts", {}).get("train"),
            "recipe": self.recipe.to_dict(),
            "metrics": {"val_accuracy_vs_teacher": last.get("val_accuracy"), "evaluation": evaluation},
        }
        calibration = model.config.provenance.get("training", {}).get("calibration")
        if calibration:
            provenance["calibration"] = calibration
            provenance["metrics"]["calibration"] = {k: v for k, v in calibration.items() if not k.startswith("bins")}
        if self.recipe.export.metrics:
            try:
                provenance["metrics"]["crossval"] = json.loads(Path(self.recipe.export.metrics).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InvalidConfigError(f"recipe.export.metrics: cannot read {self.recipe.export.metrics}: {exc}") from None
        dtype = torch.float16 if self.recipe.export.dtype == "float16" else None
        out = export_model(model, folder / "model", provenance=provenance, dtype=dtype, name=self.recipe.name,
                           load_name=self.recipe.export.push_to_hub or "path/to/this/folder")
        summary: dict[str, Any] = {"model_dir": str(out)}
        if self.recipe.export.push_to_hub:
            from imgsent.hub import push_to_hub

            summary["pushed"] = push_to_hub(out, self.recipe.export.push_to_hub, private=self.recipe.export.private)
        return summary


@dataclass(frozen=True)
class Stage:
    """One stage: the recipe sections its output depends on, and the method that runs it in its folder."""

    sections: tuple[str, ...]
    run: Callable[[DistillRun, Path], dict[str, Any]]


STAGE_TABLE: dict[str, Stage] = {
    "ingest": Stage(("corpus",), DistillRun._run_ingest),
    "dedup": Stage(("dedup", "student"), DistillRun._run_dedup),
    "label": Stage(("teacher",), DistillRun._run_label),
    "select": Stage(("selection",), DistillRun._run_select),
    "train": Stage(("student", "train"), DistillRun._run_train),
    "evaluate": Stage(("evaluate",), DistillRun._run_evaluate),
    "export": Stage(("export", "name"), DistillRun._run_export),
}
STAGES: tuple[str, ...] = tuple(STAGE_TABLE)
"""The stages, in the order they run."""


def _rank() -> int:
    from imgsent.distill.distributed import process_rank

    return process_rank()


def _world_size() -> int:
    from imgsent.distill.distributed import world_size

    return world_size()


def _wait_for(marker: Path, fingerprint: str, timeout: float = 600.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while _read_json(marker).get("fingerprint") != fingerprint:
        if time.monotonic() > deadline:
            raise InvalidConfigError(f"Rank {_rank()} waited {timeout:.0f} s for rank 0 to prepare {marker.parent}.")
        time.sleep(0.2)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if not isinstance(v, (list, dict))}
