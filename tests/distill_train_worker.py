"""Test helper: run ``train_student`` from a JSON spec, optionally sleeping after each step.

Used by tests/test_distill_train.py to have a real process to SIGKILL mid-run:
``python tests/distill_train_worker.py spec.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(spec_path: str) -> int:
    import torch

    from imgsent.config import ModelConfig
    from imgsent.distill.records import TrainConfig, read_rows
    from imgsent.distill.trainer import train_student
    from imgsent.models.sentiment import SentimentModel

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    torch.manual_seed(spec["init_seed"])
    model = SentimentModel(ModelConfig.from_dict(spec["model"]))
    delay = float(spec.get("sleep_per_step", 0.0))
    train_student(
        model,
        read_rows(spec["train"]),
        read_rows(spec["val"]),
        TrainConfig.from_dict(spec["config"]),
        spec["out"],
        resume=bool(spec.get("resume", False)),
        on_step=lambda progress: time.sleep(delay),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
