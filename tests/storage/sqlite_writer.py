"""Child process for the SQLite crash test: writes until killed, printing each acknowledgement.

``python -m tests.storage.sqlite_writer <db path>``; prints ``create <key> <revision>`` after each
acknowledged create and ``update <value> <revision>`` after each acknowledged counter update.
"""

from __future__ import annotations

import asyncio
import sys

from apiserver.storage.sqlite import SQLiteBackend

COUNTER = "/registry/crash/counter"


def ack(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(path: str) -> None:
    backend = await SQLiteBackend.open(path)
    counter = await backend.create(COUNTER, b"0")

    async def creator(n: int) -> None:
        i = 0
        while True:
            key = f"/registry/crash/objects/w{n}-{i:06d}"
            kv = await backend.create(key, key.encode() * 20)
            ack(f"create {key} {kv.mod_revision}")
            i += 1

    async def updater() -> None:
        nonlocal counter
        while True:
            value = int(counter.value) + 1
            counter = await backend.update(COUNTER, str(value).encode(),
                                           expected_revision=counter.mod_revision)
            ack(f"update {value} {counter.mod_revision}")

    await asyncio.gather(updater(), *(creator(n) for n in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
