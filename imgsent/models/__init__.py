"""Networks and the model that wraps them.

``network`` holds the backbone-plus-head network and the one builders table; ``efficientnet``
and ``vit`` build backbones with no file or network I/O; ``sentiment`` pairs a network with its
config and reads and writes model folders.
"""

from imgsent.models.network import BUILDERS, SentimentNet, build_network

__all__ = ["BUILDERS", "SentimentNet", "build_network"]
