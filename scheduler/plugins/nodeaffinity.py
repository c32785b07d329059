"""NodeAffinity (not written yet: implements no extension point)."""

from __future__ import annotations


class NodeAffinity:
    name = "NodeAffinity"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass
