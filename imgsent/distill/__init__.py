"""Distillation pipeline: corpus ingest, image fetch, dedup, teacher labelling, selection, training."""
