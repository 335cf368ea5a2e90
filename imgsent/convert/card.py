"""The model card (README.md) written into converted folders."""

from __future__ import annotations

from imgsent.config import ModelConfig


def model_card(config: ModelConfig) -> str:
    """A short README for a converted folder: what it is, where it came from, how it is fed."""
    pre, prov = config.preprocess, config.provenance
    scale = "x / 255" if pre.std[0] == 1.0 else "x / 127.5 - 1"
    return (
        f"# {prov.get('file', 'Keras student')} converted for imgsent\n\n"
        f"Converted from the Keras `.h5` file `{prov.get('file')}` (sha256 `{prov.get('sha256')}`) "
        f"with preset `{prov.get('preset')}`.\n\n"
        "The students are from Serra, Carrara, Tesconi, Falchi, *The Emotions of the Crowd: Learning "
        "Image Sentiment from Tweets via Cross-modal Distillation* (ECAI 2023), released at "
        "https://github.com/fabiocarrara/cross-modal-visual-sentiment-analysis. That repository states "
        "no licence for the weights; ask the authors before redistributing them.\n\n"
        f"- architecture: `{config.architecture.name}` {config.architecture.args}\n"
        f"- input: {pre.image_size}x{pre.image_size}, full JPEG decode, bilinear resize without antialias "
        f"(aspect ratio not kept), then `{scale}`\n"
        "- outputs: negative, neutral, positive (softmax)\n"
    )
