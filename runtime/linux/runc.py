"""Async wrappers around the ``runc`` command line (one state root per driver).

``runc run --detach`` itself is run by the per-container shim (``shim.py``), which owns the
container's stdio; everything else the driver asks runc goes through here.
"""

from __future__ import annotations

import asyncio
import re

import orjson

from runtime.driver import DriverError


class RuncError(DriverError):
    pass


_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def error_message(stderr: bytes) -> str:
    """The human part of runc's logrus-formatted error output."""
    text = stderr.decode(errors="replace").strip()
    found = _MSG.findall(text)
    if found:
        return found[-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


class Runc:
    def __init__(self, binary: str, root: str):
        self.binary = binary
        self.root = root

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]

    async def run(self, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(stdin)
        assert proc.returncode is not None
        return proc.returncode, out, err

    async def check(self, *args: str, stdin: bytes | None = None) -> bytes:
        rc, out, err = await self.run(*args, stdin=stdin)
        if rc != 0:
            raise RuncError(f"runc {args[0]}: {error_message(err)}")
        return out

    async def start(self, cid: str) -> None:
        await self.check("start", cid)

    async def state(self, cid: str) -> dict | None:
        """runc's view of the container, or None when runc does not know it."""
        rc, out, err = await self.run("state", cid)
        if rc != 0:
            if b"does not exist" in err or b"not exist" in err:
                return None
            raise RuncError(f"runc state: {error_message(err)}")
        return orjson.loads(out)

    async def kill(self, cid: str, signal: str, all_processes: bool = False) -> bool:
        """Signal the container; False when it is not running (already stopped or gone)."""
        args = ["kill"] + (["--all"] if all_processes else []) + [cid, signal]
        rc, _, err = await self.run(*args)
        if rc == 0:
            return True
        msg = error_message(err)
        if "not running" in msg or "does not exist" in msg or "process already finished" in msg:
            return False
        raise RuncError(f"runc kill: {msg}")

    async def delete(self, cid: str) -> None:
        rc, _, err = await self.run("delete", "--force", cid)
        if rc != 0 and b"does not exist" not in err:
            raise RuncError(f"runc delete: {error_message(err)}")

    async def update(self, cid: str, resources: dict) -> None:
        await self.check("update", "--resources", "-", cid, stdin=orjson.dumps(resources))

    async def ps(self, cid: str) -> list[int]:
        out = await self.check("ps", "--format", "json", cid)
        return list(orjson.loads(out) or [])
