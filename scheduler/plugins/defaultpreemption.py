"""DefaultPreemption (not written yet: implements no extension point)."""

from __future__ import annotations


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass
