"""Watch delivery through real HTTP, on SQLite and on etcd: many watchers of every kind (plain,
label selector, Table) while writers run concurrently, and a client that stops reading long enough
for the server's connection to push back, then reads everything."""

from __future__ import annotations

import asyncio
import socket
import uuid
from urllib.parse import urlsplit

import orjson

from tests.apiserver.builders import make_namespace

JSON = {"Content-Type": "application/json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


async def new_namespace(http) -> str:
    name = "f-" + uuid.uuid4().hex[:8]
    async with http.post("/api/v1/namespaces", json=make_namespace(name)) as r:
        assert r.status == 201, await r.text()
    return name


async def list_rv(http, base: str) -> str:
    async with http.get(base) as r:
        assert r.status == 200
        return (await r.json())["metadata"]["resourceVersion"]


async def read_until(resp, count: int, timeout: float = 30.0) -> list[dict]:
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            line = await resp.content.readline()
            assert line, f"stream ended after {len(out)} of {count} events"
            out.append(orjson.loads(line))
    return out


def summary(events: list[dict]) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of plain and Table watch events alike."""
    out = []
    for e in events:
        obj = e["object"]
        if obj.get("kind") == "Table":
            (row,) = obj["rows"]
            obj = row["object"]
        md = obj["metadata"]
        out.append((e["type"], md["name"], md["resourceVersion"]))
    return out


async def test_every_watcher_gets_every_event_in_one_order(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv0 = await list_rv(http, base)
    plain = [await http.get(f"{base}?watch=true&resourceVersion={rv0}") for _ in range(20)]
    selected = [await http.get(f"{base}?watch=true&resourceVersion={rv0}&labelSelector=x%3D1")
                for _ in range(4)]
    tables = [await http.get(f"{base}?watch=true&resourceVersion={rv0}", headers=TABLE) for _ in range(3)]
    try:
        assert all(w.status == 200 for w in plain + selected + tables)

        async def writer(i: int) -> None:
            name = f"cm{i}"
            for body, method, path in (
                    ({"metadata": {"name": name, "labels": {"x": "1"}}}, "POST", base),
                    ({"metadata": {"labels": {"x": "2"}}}, "PATCH", f"{base}/{name}"),
                    ({"metadata": {"labels": {"x": "1"}}, "data": {"k": "v"}}, "PATCH", f"{base}/{name}"),
                    (None, "DELETE", f"{base}/{name}")):
                async with http.request(method, path, data=orjson.dumps(body) if body else None,
                                        headers=(JSON if method == "POST" else MERGE) if body else None) as r:
                    assert r.status in (200, 201), await r.text()

        writers = 12
        await asyncio.gather(*(writer(i) for i in range(writers)))
        streams = await asyncio.gather(*(read_until(w, 4 * writers) for w in plain + tables))
        # Four events per configmap; what a selector watcher sees: ADDED, DELETED (label left the
        # selector), ADDED (came back), DELETED.
        per_selected = await asyncio.gather(*(read_until(w, 4 * writers) for w in selected))
    finally:
        for w in plain + selected + tables:
            w.close()
    reference = summary(streams[0])
    assert sorted(int(rv) for _, _, rv in reference) == [int(rv) for _, _, rv in reference]
    assert len({rv for _, _, rv in reference}) == 4 * writers
    for s in streams:
        assert summary(s) == reference
    expected_selected = []
    seen: dict[str, int] = {}
    for kind, name, rv in reference:
        step = seen.get(name, 0)
        seen[name] = step + 1
        expected_selected.append((("ADDED", "DELETED", "ADDED", "DELETED")[step], name, rv))
        assert kind == ("ADDED", "MODIFIED", "MODIFIED", "DELETED")[step]
    for s in per_selected:
        assert summary(s) == expected_selected
    # kubectl needs the column definitions on the first event of a Table watch only.
    for s in streams[len(plain):]:
        assert s[0]["object"]["columnDefinitions"]
        assert all(not e["object"].get("columnDefinitions") for e in s[1:])


async def open_slow_watch(url: str, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A watch whose client reads nothing until told to: a small receive buffer, so that what
    the server writes piles up on its side of the connection."""
    u = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (u.hostname, u.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=16 * 1024)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAccept: application/json\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower()
    return reader, writer


async def read_chunked_lines(reader: asyncio.StreamReader, count: int, timeout: float = 60.0) -> list[dict]:
    out: list[dict] = []
    body = b""
    async with asyncio.timeout(timeout):
        while len(out) < count:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            assert size, f"stream ended after {len(out)} of {count} events"
            body += (await reader.readexactly(size + 2))[:-2]
            *lines, body = body.split(b"\n")
            out.extend(orjson.loads(x) for x in lines)
    assert body == b""
    return out


async def test_reader_that_stalls_gets_everything_in_order_once_it_reads(http, apiserver):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv0 = await list_rv(http, base)
    reader, writer = await open_slow_watch(apiserver.url, f"{base}?watch=true&resourceVersion={rv0}")
    try:
        # ~12 MB while the client reads nothing: more than the socket buffers of both sides
        # (at most 4 MB on the sending side) and the transport's high-water mark, so the server's
        # writes are held back and the events wait for the connection to drain.
        blob = "x" * (256 * 1024)
        count = 48

        async def create(i: int) -> None:
            body = {"metadata": {"name": f"big{i}"}, "data": {"blob": blob}}
            async with http.post(base, data=orjson.dumps(body), headers=JSON) as r:
                assert r.status == 201, await r.text()

        for start in range(0, count, 8):
            await asyncio.gather(*(create(i) for i in range(start, min(start + 8, count))))
        # A client that keeps up is not held back by the stalled one.
        async with http.get(f"{base}?watch=true&resourceVersion={rv0}&timeoutSeconds=30") as quick:
            got = await read_until(quick, count)
        assert sorted(e["object"]["metadata"]["name"] for e in got) == sorted(f"big{i}" for i in range(count))
        events = await read_chunked_lines(reader, count)
        assert summary(events) == summary(got)
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs) and len(set(rvs)) == count
        assert all(e["object"]["data"]["blob"] == blob for e in events)
        # Caught up: live events flow again.
        async with http.post(base, data=orjson.dumps({"metadata": {"name": "after"}}), headers=JSON) as r:
            assert r.status == 201
        (last,) = await read_chunked_lines(reader, 1, timeout=10)
        assert last["type"] == "ADDED" and last["object"]["metadata"]["name"] == "after"
    finally:
        writer.close()


async def test_watch_with_bookmarks_allowed_ends_cleanly_at_its_timeout(http):
    ns = await new_namespace(http)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    rv0 = await list_rv(http, base)
    async with http.get(f"{base}?watch=true&resourceVersion={rv0}&timeoutSeconds=2&allowWatchBookmarks=true") as w:
        async with http.post(base, data=orjson.dumps({"metadata": {"name": "a"}}), headers=JSON) as r:
            assert r.status == 201
        (ev,) = await read_until(w, 1)
        assert ev["type"] == "ADDED"
        async with asyncio.timeout(10):
            rest = await w.content.read()            # the server ends the response: no error
    assert rest == b""
