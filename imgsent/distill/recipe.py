"""Recipes: one YAML (or JSON) file that describes a whole distillation run.

Every section is optional except ``corpus``; defaults are the paper's recipe. Relative
paths are resolved against the recipe file's folder. Example (``recipes/default.yaml``)::

    name: imgsent-default
    corpus: {path: ../../shared/data/twitter1-dev/corpus.jsonl, min_words: 3, lang: null}
    dedup: {near: true, threshold: 0.15}
    teacher: {kind: vader, band: 0.3, temperature: 0.1}
    selection: {thresholds: {negative: 0.7, neutral: 0.9, positive: 0.9}, val_fraction: 0.1, seed: 0}
    student: {architecture: efficientnet_lite0, args: {head_hidden: 32}, pretrained: true}
    train: {epochs: 5, freeze_backbone_epochs: 1, batch_size: 32, lr: 1.0e-4}
    export: {dtype: float16}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imgsent.checks import Range, check_choice
from imgsent.distill.records import TrainConfig
from imgsent.errors import InvalidConfigError, require_extra

TeacherKind = Literal["vader", "hf"]
SearchMethod = Literal["auto", "exact", "faiss"]


@dataclass(frozen=True)
class CorpusSection:
    """Where the posts are and which ones to keep (see :func:`imgsent.distill.corpus.read_corpus`)."""

    path: str
    format: str = "auto"
    lang: str | None = "en"
    min_words: int = 6
    drop_references: bool = True
    image_root: str | None = None
    fetch: bool = False
    max_posts: int | None = None


@dataclass(frozen=True)
class DedupSection:
    """Exact (content hash) and near (embedding distance) duplicate removal.

    ``search``, ``nlist``, ``nprobe`` and ``memory_gb`` choose how near-duplicate candidates are
    found (see :func:`imgsent.distill.dedup.find_near_duplicates`); ``backend`` is the engine of
    the embedding pass (as ``imgsent classify --backend``).
    """

    exact: bool = True
    near: bool = True
    threshold: float = 0.15
    search: SearchMethod = "auto"
    nlist: int | None = None
    nprobe: int = 16
    memory_gb: float = 4.0
    backend: str = "auto"
    batch_size: int = 64

    def __post_init__(self) -> None:
        Range(float, 0.0, 2.0).check(self.threshold, "recipe.dedup.threshold")
        check_choice(self.search, ("auto", "exact", "faiss"), "recipe.dedup.search")
        if self.nlist is not None:
            Range(int, 1, 1 << 24).check(self.nlist, "recipe.dedup.nlist")
        Range(int, 1, 1 << 24).check(self.nprobe, "recipe.dedup.nprobe")
        Range(float, 0.01, 1024.0).check(self.memory_gb, "recipe.dedup.memory_gb")
        check_choice(self.backend, ("auto", "torch", "onnxruntime", "openvino"), "recipe.dedup.backend")
        Range(int, 1, 4096).check(self.batch_size, "recipe.dedup.batch_size")
        for name in ("exact", "near"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfigError(f"recipe.dedup.{name} must be true or false, got {getattr(self, name)!r}.")


@dataclass(frozen=True)
class TeacherSection:
    """The frozen text teacher: ``vader`` (offline) or ``hf`` (a Hub or local sequence classifier)."""

    kind: TeacherKind = "vader"
    model: str = "cardiffnlp/twitter-roberta-base-sentiment-latest"
    revision: str | None = None
    band: float = 0.3
    temperature: float = 0.1
    batch_size: int = 256


@dataclass(frozen=True)
class SelectionSection:
    """Confidence thresholds, balancing and the train/val split."""

    thresholds: dict[str, float] = field(default_factory=lambda: {"negative": 0.7, "neutral": 0.9, "positive": 0.9})
    balance: bool = False
    val_fraction: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class StudentSection:
    """The vision student: an architecture from the registry, its input size and initialisation."""

    architecture: str = "efficientnet_lite0"
    args: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    resize_mode: str = "squash"
    interpolation: str = "bicubic"
    pretrained: bool = True


@dataclass(frozen=True)
class EvaluateSection:
    """Optional zero-shot evaluation on a labelled CSV (never used for training)."""

    labels: str | None = None
    images_root: str | None = None
    tta: bool = False


@dataclass(frozen=True)
class ExportSection:
    """The exported model folder and, optionally, a Hub repo to push it to.

    ``metrics`` names a JSON file of independent measurements (e.g. the output of
    ``recipes/crossval.py``) to record in the model's provenance and card.
    """

    dtype: Literal["float32", "float16"] = "float32"
    metrics: str | None = None
    push_to_hub: str | None = None
    private: bool = True


@dataclass(frozen=True)
class Recipe:
    """A whole distillation run. Load it with :func:`load_recipe`.

    Example:
        >>> recipe = load_recipe("recipes/default.yaml")
        >>> recipe.student.architecture, recipe.teacher.kind
        ('efficientnet_lite0', 'vader')
    """

    corpus: CorpusSection
    name: str = "imgsent-student"
    dedup: DedupSection = field(default_factory=DedupSection)
    teacher: TeacherSection = field(default_factory=TeacherSection)
    selection: SelectionSection = field(default_factory=SelectionSection)
    student: StudentSection = field(default_factory=StudentSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    export: ExportSection = field(default_factory=ExportSection)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (recorded in the exported model's provenance)."""
        return dataclasses.asdict(self)

    def section_json(self, *names: str) -> str:
        """Canonical JSON of some sections: the fingerprint of a stage's inputs."""
        data = self.to_dict()
        return json.dumps({n: data[n] for n in names}, sort_keys=True, default=str)


_SECTIONS: dict[str, type] = {
    "corpus": CorpusSection,
    "dedup": DedupSection,
    "teacher": TeacherSection,
    "selection": SelectionSection,
    "student": StudentSection,
    "evaluate": EvaluateSection,
    "export": ExportSection,
}
_PATH_FIELDS = {("corpus", "path"), ("corpus", "image_root"), ("evaluate", "labels"), ("evaluate", "images_root"),
                ("export", "metrics")}


def load_recipe(path: str | Path, *, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read, validate and resolve a recipe file (YAML or JSON).

    Args:
        path: The recipe file.
        overrides: Dotted keys replacing values, e.g. ``{"train.epochs": 1}``.

    Returns:
        A :class:`Recipe` with absolute paths.

    Raises:
        InvalidConfigError: The file is unreadable, or a key or value is invalid; the
            message names the key and the valid options.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidConfigError(f"Cannot read recipe {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidConfigError(f"{path} is not valid JSON: {exc}. Fix the file or write it as YAML.") from None
    else:
        require_extra("yaml", "distill")
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            raise InvalidConfigError(f"{path} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}.") from None
    if not isinstance(data, dict):
        raise InvalidConfigError(f"{path}: a recipe is a mapping of sections, got {type(data).__name__}.")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return recipe_from_dict(data, base=path.parent, source=str(path))


def recipe_from_dict(data: dict[str, Any], *, base: Path, source: str | None = None) -> Recipe:
    """Validate a recipe mapping; relative paths are resolved against ``base``."""
    unknown = set(data) - set(_SECTIONS) - {"name", "train"}
    if unknown:
        raise InvalidConfigError(
            f"Unknown recipe section(s) {sorted(unknown)}. Valid sections: name, train, {', '.join(_SECTIONS)}."
        )
    if "corpus" not in data:
        raise InvalidConfigError("A recipe needs a corpus section with at least `path`.")
    built: dict[str, Any] = {}
    for name, kind in _SECTIONS.items():
        raw = data.get(name) or {}
        if not isinstance(raw, dict):
            raise InvalidConfigError(f"recipe.{name} must be a mapping, got {raw!r}.")
        raw = dict(raw)
        for section, key in _PATH_FIELDS:
            if section == name and raw.get(key) is not None:
                raw[key] = str((base / str(raw[key])).resolve())
        built[name] = _build(kind, raw, f"recipe.{name}")
    train = data.get("train") or {}
    if not isinstance(train, dict):
        raise InvalidConfigError(f"recipe.train must be a mapping, got {train!r}.")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    if set(train) - names:
        extra = sorted(set(train) - names)
        raise InvalidConfigError(f"Unknown key(s) {extra} in recipe.train. Valid keys: {', '.join(sorted(names))}.")
    try:
        config = TrainConfig.from_dict(train)
    except (InvalidConfigError, TypeError, ValueError) as exc:
        raise InvalidConfigError(f"recipe.train.{exc}") from None
    teacher = built["teacher"]
    if teacher.kind not in ("vader", "hf"):
        raise InvalidConfigError(f"recipe.teacher.kind must be 'vader' or 'hf', got {teacher.kind!r}.")
    from imgsent.registry import get_architecture

    get_architecture(built["student"].architecture)
    return Recipe(name=str(data.get("name", "imgsent-student")), train=config, source=source, **built)


def _build(kind: type, raw: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    extra = set(raw) - names
    if extra:
        raise InvalidConfigError(f"Unknown key(s) {sorted(extra)} in {where}. Valid keys: {', '.join(sorted(names))}.")
    for f in dataclasses.fields(kind):
        if f.name in raw:
            if not (raw[f.name] is None and "None" in str(f.type)):
                _check_type(raw[f.name], f.default, f"{where}.{f.name}")
    try:
        return kind(**raw)
    except TypeError as exc:
        raise InvalidConfigError(f"{where}: {exc}") from None


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _check_type(value: Any, default: Any, where: str) -> None:
    """A value must have its default's type (an int is a valid float); ``None`` defaults accept anything."""
    kind = type(default)
    if default is None or default is dataclasses.MISSING or kind not in _TYPE_NAMES:
        return
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise InvalidConfigError(f"{where} must be {_TYPE_NAMES[kind]}, got {value!r}.")


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise InvalidConfigError(f"Cannot override {dotted!r}: {key!r} is not a section.")
    node[leaf] = value
