"""DefaultBinder: binds through the API (``POST pods/<name>/binding``)."""

from __future__ import annotations

from typing import Any

import aiohttp

from api import errors
from scheduler.framework import CycleState, Status


class DefaultBinder:
    name = "DefaultBinder"

    def __init__(self, args: dict | None = None, handle: Any = None):
        pass

    async def bind(self, state: CycleState, pod: dict, node_name: str, handle: Any) -> Status:
        meta = pod.get("metadata") or {}
        try:
            await handle.client.bind(meta.get("namespace") or "default", meta.get("name", ""), node_name)
        except (TimeoutError, errors.StatusError, aiohttp.ClientError) as e:
            return Status.error(f"binding rejected: {e}", plugin=self.name)
        return Status()
