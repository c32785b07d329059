"""InterPodAffinity (not written yet: implements no extension point)."""

from __future__ import annotations


class InterPodAffinity:
    name = "InterPodAffinity"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass
