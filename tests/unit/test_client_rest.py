"""The REST client against a fake server speaking the Kubernetes wire protocol."""

import asyncio

import aiohttp
import pytest
from aiohttp import web

from api import errors, registry
from client.rest import Client
from tests.client.fakeserver import make_pod, running_fake

PODS = registry.resolve("pods")
NODES = registry.resolve("nodes")
DEPLOYMENTS = registry.resolve("deployments")


@pytest.fixture
async def fake():
    async with running_fake() as server:
        yield server


@pytest.fixture
async def client(fake):
    async with Client(fake.url, token="secret-token") as c:
        yield c


@pytest.mark.parametrize(("args", "path"), [
    (("pods", "ns1"), "/api/v1/namespaces/ns1/pods"),
    (("pods", None), "/api/v1/pods"),
    (("pods", "ns1", "p"), "/api/v1/namespaces/ns1/pods/p"),
    (("pods", "ns1", "p", "binding"), "/api/v1/namespaces/ns1/pods/p/binding"),
    (("nodes", "ignored", "n1"), "/api/v1/nodes/n1"),
    (("deployments.apps", "d", "web", "scale"), "/apis/apps/v1/namespaces/d/deployments/web/scale"),
    (("leases", "kube-system", "x"), "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"),
])
async def test_paths(args, path):
    assert Client("http://127.0.0.1:1").path(*args) == path


async def test_unknown_resource_name_is_refused():
    with pytest.raises(ValueError, match="unknown resource"):
        Client("http://127.0.0.1:1").path("widgets")


async def test_crud_round_trip_and_typed_errors(fake, client):
    created = await client.create(PODS, make_pod("a", labels={"app": "web"}))
    assert created["metadata"]["namespace"] == "default", "namespace defaults to the client's"
    got = await client.get(PODS, "a")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(errors.AlreadyExists):
        await client.create(PODS, make_pod("a"))
    got["metadata"]["labels"]["tier"] = "front"
    updated = await client.update(PODS, got)
    assert updated["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
    with pytest.raises(errors.Conflict):
        await client.update(PODS, got)  # stale resourceVersion
    patched = await client.patch(PODS, "a", {"metadata": {"labels": {"tier": None, "x": "y"}}})
    assert patched["metadata"]["labels"] == {"app": "web", "x": "y"}
    got = await client.get(PODS, "a")
    got["status"] = {"phase": "Running"}
    await client.update_status(PODS, got)
    assert (await client.get(PODS, "a"))["status"] == {"phase": "Running"}
    await client.delete(PODS, "a")
    with pytest.raises(errors.NotFound) as info:
        await client.get(PODS, "a")
    assert info.value.name == "a"
    assert fake.requests[0][0] == "POST"


async def test_bearer_token_and_query_options_on_the_wire(fake, client):
    seen = {}

    async def capture(request):
        seen["auth"] = request.headers.get("Authorization")
        seen["query"] = dict(request.query)
        return web.json_response({"kind": "Status", "status": "Success"})

    fake.override = capture
    await client.delete(PODS, "a", "ns", propagation_policy="Foreground", grace_period_seconds=0,
                        dry_run=True)
    assert seen["auth"] == "Bearer secret-token"
    assert seen["query"] == {"propagationPolicy": "Foreground", "gracePeriodSeconds": "0", "dryRun": "All"}
    await client.list(PODS, "ns", label_selector={"app": "web", "tier": "db"}, field_selector="spec.nodeName=n1",
                      limit=5, resource_version="0")
    assert seen["query"] == {"labelSelector": "app=web,tier=db", "fieldSelector": "spec.nodeName=n1",
                             "limit": "5", "resourceVersion": "0"}
    await client.create(PODS, make_pod("b"), field_manager="me", field_validation="Strict")
    assert seen["query"] == {"fieldManager": "me", "fieldValidation": "Strict"}


async def test_list_selectors_and_pagination(fake, client):
    for i in range(7):
        fake.put(PODS, make_pod(f"p{i}", labels={"app": "web" if i % 2 else "db"}))
    fake.put(PODS, make_pod("other", namespace="ns2"))
    page = await client.list(PODS, "default", limit=3)
    assert len(page["items"]) == 3 and page["metadata"]["continue"]
    before = fake.count("GET", "/pods")
    everything = await client.list_all(PODS, "default", page_size=3)
    assert [p["metadata"]["name"] for p in everything["items"]] == [f"p{i}" for i in range(7)]
    assert fake.count("GET", "/pods") - before == 3
    assert "continue" not in everything["metadata"]
    web_pods = await client.list_all(PODS, label_selector="app=web")
    assert sorted(p["metadata"]["name"] for p in web_pods["items"]) == ["p1", "p3", "p5"]
    assert len((await client.list(PODS))["items"]) == 8, "namespace None lists all namespaces"
    names = [p["metadata"]["name"] async for p in client.iter_list(PODS, "ns2", page_size=1)]
    assert names == ["other"]


async def test_cluster_scoped_resources_ignore_namespace(fake, client):
    await client.create(NODES, {"metadata": {"name": "n1"}})
    node = await client.get(NODES, "n1")
    assert "namespace" not in node["metadata"]
    assert fake.requests[-1][1] == "/api/v1/nodes/n1"


async def test_status_bodies_become_typed_errors(fake, client):
    client.max_retries = 0
    fake.fail_next.append(errors.TooManyRequests("slow down", retry_after=3))
    with pytest.raises(errors.TooManyRequests) as info:
        await client.list(PODS)
    assert info.value.retry_after == 3
    fake.fail_next.append(errors.invalid("Pod", "x", [errors.Cause("FieldValueRequired", "Required value",
                                                                  "spec.containers")]))
    with pytest.raises(errors.Invalid) as inv:
        await client.create(PODS, make_pod("x"))
    assert inv.value.causes[0].field == "spec.containers"


async def test_non_status_error_body_still_types_by_code(fake, client):
    async def plain(request):
        return web.Response(status=503, text="upstream down")

    fake.override = plain
    with pytest.raises(errors.ServiceUnavailable, match="upstream down"):
        await client.get(PODS, "x")


async def test_raw_request_for_subresources(fake, client):
    fake.put(PODS, make_pod("p"))
    with pytest.raises(errors.MethodNotAllowed):
        await client.bind("default", "p", "node-1")
    assert fake.requests[-1][:2] == ("POST", "/api/v1/namespaces/default/pods/p/binding")


async def test_watch_streams_events_and_bookmarks_then_ends_on_close(fake, client):
    fake.put(PODS, make_pod("before"))
    listed = await client.list(PODS, "default")
    rv = listed["metadata"]["resourceVersion"]
    watch = client.watch(PODS, "default", resource_version=rv, timeout_seconds=30)
    events = []

    async def consume():
        async for etype, obj in watch:
            events.append((etype, obj["metadata"].get("name")))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    fake.put(PODS, make_pod("a"))
    fake.put(PODS, make_pod("a", labels={"x": "1"}))
    fake.remove(PODS, "default", "a")
    fake.put(PODS, make_pod("elsewhere", namespace="ns2"))
    fake.send_bookmarks()
    await asyncio.sleep(0.05)
    fake.close_watches()
    await asyncio.wait_for(task, 5)
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a"), ("BOOKMARK", None)]
    assert watch.resource_version == str(fake.current_rv)
    q = [q for m, p, q in fake.requests if q.get("watch") == "true"][0]
    assert q == {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "30"}


async def test_watch_from_compacted_version_raises_gone(fake, client):
    fake.put(PODS, make_pod("a"))
    fake.put(PODS, make_pod("b"))
    fake.compact()
    with pytest.raises(errors.Gone):
        async for _ in client.watch(PODS, resource_version="100"):
            pass


async def test_watch_410_error_event_mid_stream_raises_gone(fake, client):
    watch = client.watch(PODS, resource_version=str(fake.current_rv))
    got = []

    async def consume():
        async for event in watch:
            got.append(event[0])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    fake.put(PODS, make_pod("a"))
    fake.expire_watches()
    with pytest.raises(errors.Gone):
        await asyncio.wait_for(task, 5)
    assert got == ["ADDED"]


async def test_watch_large_objects_split_across_chunks(fake, client):
    big = make_pod("big", labels={f"k{i}": "v" * 60 for i in range(3000)})
    watch = client.watch(PODS, resource_version=str(fake.current_rv))
    task = asyncio.create_task(watch.__anext__())
    await asyncio.sleep(0.05)
    fake.put(PODS, big)
    etype, obj = await asyncio.wait_for(task, 5)
    assert etype == "ADDED" and len(obj["metadata"]["labels"]) == 3000
    await watch.close()


async def test_429_is_retried_after_the_servers_delay_then_given_up(fake, client):
    fake.put(PODS, make_pod("a"))
    fake.fail_next += [errors.TooManyRequests("slow down", retry_after=0)] * 2
    assert (await client.get(PODS, "a"))["metadata"]["name"] == "a"
    assert fake.count("GET", "/pods/a") == 3
    fake.fail_next += [errors.TooManyRequests("slow down", retry_after=0)] * 4
    with pytest.raises(errors.TooManyRequests):
        await client.get(PODS, "a")
    assert fake.count("GET", "/pods/a") == 3 + 4, "three retries, then the error"
    fake.fail_next.append(errors.InternalError("boom"))
    with pytest.raises(errors.InternalError):
        await client.get(PODS, "a")
    assert fake.count("GET", "/pods/a") == 8, "a 5xx without Retry-After is not retried"


async def test_5xx_with_retry_after_header_is_retried(fake, client):
    calls = []

    async def flaky(request):
        calls.append(request.method)
        if len(calls) == 1:
            return web.Response(status=503, headers={"Retry-After": "0"}, text="warming up")
        return web.json_response({"kind": "Pod", "metadata": {"name": "a"}})

    fake.override = flaky
    assert (await client.create(PODS, make_pod("a")))["metadata"]["name"] == "a"
    assert calls == ["POST", "POST"]


async def test_server_side_apply_helper(fake, client):
    seen = {}

    async def capture(request):
        seen.update(query=dict(request.query), ctype=request.content_type, path=request.path)
        return web.json_response({"kind": "Pod", "metadata": {"name": "a"}})

    fake.override = capture
    await client.apply(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}, "ns",
                       field_manager="ctl", force=True)
    assert seen == {"query": {"fieldManager": "ctl", "force": "true"}, "ctype": "application/apply-patch+yaml",
                    "path": "/api/v1/namespaces/ns/pods/a"}


async def test_watch_ends_quietly_when_the_server_goes_silent_past_the_timeout(fake, client):
    release = asyncio.Event()

    async def silent(request):
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"7"}}}\n')
        await release.wait()
        return resp

    fake.override = silent
    watch = client.watch(PODS, timeout_seconds=0)
    watch._read_timeout = 0.3  # the margin over timeoutSeconds, shortened for the test
    try:
        events = [e async for e in watch]
    finally:
        release.set()
    assert events == [("ADDED", {"metadata": {"name": "a", "resourceVersion": "7"}})]
    assert watch.resource_version == "7"


async def test_open_watches_do_not_starve_ordinary_requests(fake):
    async with Client(fake.url, pool_size=2) as client:
        watches = [client.watch(PODS, resource_version=str(fake.current_rv)) for _ in range(4)]
        pending = [asyncio.create_task(w.__anext__()) for w in watches]
        await asyncio.sleep(0.1)
        assert len(fake.watchers) == 4
        fake.put(PODS, make_pod("a"))
        assert (await asyncio.wait_for(client.get(PODS, "a"), 5))["metadata"]["name"] == "a"
        await asyncio.wait_for(asyncio.gather(*pending), 5)
        for w in watches:
            await w.close()


# -- the transport of ordinary requests, against a server written byte by byte ----------------

class RawServer:
    """Answers each request with the next scripted reply (bytes, then whether to close after)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0

    async def _serve(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                reply, close = self.replies.pop(0)
                writer.write(reply)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()


def _json_reply(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
            + body)


OK_NS = b'{"kind":"Namespace","metadata":{"name":"x"}}'


async def test_transport_reuses_one_connection_and_sends_a_complete_request():
    async with RawServer([(_json_reply(OK_NS), False), (_json_reply(OK_NS), False)]) as srv:
        async with Client(srv.url, username="u", password="p") as c:
            assert (await c.get("namespaces", "x"))["metadata"]["name"] == "x"
            await c.create("namespaces", {"metadata": {"name": "x"}}, field_manager="a b&c")
        assert srv.connections == 1, "the second request reused the kept-alive connection"
        get, post = srv.requests
        assert get.startswith(b"GET /api/v1/namespaces/x HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in get and b"\r\nAuthorization: Basic dTpw\r\n" in get
        assert b"Content-Length" not in get
        assert post.startswith(b"POST /api/v1/namespaces?fieldManager=a%20b%26c HTTP/1.1\r\n")
        assert b"\r\nContent-Type: application/json\r\n" in post
        assert post.endswith(b'\r\n\r\n{"metadata":{"name":"x"}}')


async def test_transport_reads_chunked_bodies_skips_100_continue_and_honours_connection_close():
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\n{\"kin\r\n" + b"%x\r\n" % (len(OK_NS) - 5) + OK_NS[5:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")
    closing = _json_reply(OK_NS, b"Connection: close\r\n")
    until_close = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + OK_NS
    async with RawServer([(chunked, False), (closing, True), (until_close, True), (_json_reply(b""), False)]) as srv:
        async with Client(srv.url) as c:
            assert (await c.get("namespaces", "x"))["kind"] == "Namespace"
            assert (await c.get("namespaces", "x"))["kind"] == "Namespace"
            assert (await c.get("namespaces", "x"))["kind"] == "Namespace", "a body that ends with the connection"
            assert await c.get("namespaces", "x") is None
        assert srv.connections == 3


async def test_transport_retries_idempotent_requests_on_a_connection_the_server_dropped():
    async with RawServer([(_json_reply(OK_NS), True), (_json_reply(OK_NS), False)]) as srv:
        async with Client(srv.url) as c:
            await c.get("namespaces", "x")
            await asyncio.sleep(0.05)   # the server's close has arrived
            await c.get("namespaces", "x")
        assert srv.connections == 2


async def test_transport_does_not_resend_a_post_that_got_no_answer():
    seen = []

    async def hang_up(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with Client(f"http://127.0.0.1:{port}") as c:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await c.bind("default", "p", "n")
        assert len(seen) == 1, "a binding may have been applied: it is not sent twice"
    finally:
        server.close()


async def test_transport_errors_are_aiohttps_and_timeouts_are_timeouterror():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Client(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(aiohttp.ClientConnectorError):
            await c.get("namespaces", "x")

    async def silent(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        async with Client(f"http://127.0.0.1:{port}", timeout=0.2) as c:
            with pytest.raises(TimeoutError):
                await c.get("namespaces", "x")
    finally:
        server.close()


async def test_transport_bounds_connections_in_use_by_pool_size():
    in_flight = {"now": 0, "max": 0}

    async def slow(request):
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.02)
        in_flight["now"] -= 1
        return web.json_response({"kind": "Namespace"})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{name}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]
        async with Client(f"http://127.0.0.1:{port}", pool_size=3) as c:
            await asyncio.gather(*(c.get("namespaces", f"n{i}") for i in range(12)))
    finally:
        await runner.cleanup()
    assert in_flight["max"] == 3
