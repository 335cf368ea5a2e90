"""Networks only: building blocks with no file or network I/O."""

from imgsent.models.network import SentimentNet, build_network

__all__ = ["SentimentNet", "build_network"]
