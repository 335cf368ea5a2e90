"""Integrations with engines that run imgsent at scale; each needs its own extra (e.g. ``imgsent[ray]``)."""
