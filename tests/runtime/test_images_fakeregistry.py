"""Pulls against a small in-test registry: tampered content, and the basic and bearer auth flows."""

from __future__ import annotations

import base64
import io
import os
import tarfile
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from runtime.images import ImageStore, PullError, RegistryAuth
from tests.fixtures import oci

USER, PASSWORD = "alice", "s3cret"


class FakeRegistry:
    """Serves OCI layouts as repositories (``repos``: name -> layout dir) over the distribution API.

    ``tamper`` replaces a blob's bytes; ``auth`` is None, "basic" or "bearer" (token endpoint
    ``/token`` on the same server, which wants basic credentials or a refresh token).
    """

    def __init__(self, repos: dict[str, Path], auth: str | None = None):
        self.repos = repos
        self.auth = auth
        self.tamper: dict[str, bytes] = {}
        self.token = "tok-" + os.urandom(8).hex()
        self.token_requests: list[dict] = []
        self.authorizations: list[str] = []
        self.runner: web.AppRunner | None = None
        self.address = ""

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        self.authorizations.append(header)
        if self.auth == "basic":
            return header == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.auth == "bearer":
            return header == f"Bearer {self.token}"
        return True

    def _challenge(self, repo: str) -> web.Response:
        if self.auth == "basic":
            value = 'Basic realm="fake"'
        else:
            value = (f'Bearer realm="http://{self.address}/token",service="fake-registry",'
                     f'scope="repository:{repo}:pull"')
        body = orjson.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
        return web.Response(status=401, body=body, headers={"WWW-Authenticate": value},
                            content_type="application/json")

    async def token_endpoint(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else {}
        self.token_requests.append({"method": request.method, "query": dict(request.query), "form": form,
                                    "authorization": request.headers.get("Authorization", "")})
        good_basic = request.headers.get("Authorization") == \
            "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        good_refresh = form.get("grant_type") == "refresh_token" and form.get("refresh_token") == "refresh-me"
        if not (good_basic or good_refresh):
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                     status=401)
        key = "access_token" if request.method == "POST" else "token"
        return web.json_response({key: self.token, "expires_in": 300})

    def _layout(self, name: str) -> Path:
        layout = self.repos.get(name)
        if layout is None:
            raise web.HTTPNotFound(body=orjson.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": name}]}),
                                   content_type="application/json")
        return layout

    def _blob(self, layout: Path, digest: str) -> bytes:
        if digest in self.tamper:
            return self.tamper[digest]
        path = layout / "blobs" / "sha256" / digest.split(":", 1)[-1]
        if not path.is_file():
            raise web.HTTPNotFound(body=orjson.dumps({"errors": [{"code": "BLOB_UNKNOWN", "message": digest}]}),
                                   content_type="application/json")
        return path.read_bytes()

    async def manifests(self, request: web.Request) -> web.Response:
        name, ref = request.match_info["name"], request.match_info["ref"]
        if not self._authorized(request):
            return self._challenge(name)
        layout = self._layout(name)
        if ref.startswith("sha256:"):
            digest, media_type = ref, None
        else:
            index = orjson.loads((layout / "index.json").read_bytes())
            entries = [m for m in index["manifests"]
                       if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
            if not entries:
                raise web.HTTPNotFound(body=orjson.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": ref}]}),
                                       content_type="application/json")
            digest, media_type = entries[0]["digest"], entries[0]["mediaType"]
        body = self._blob(layout, digest)
        media_type = media_type or orjson.loads(body).get("mediaType")
        headers = {"Docker-Content-Digest": digest, "Content-Type": media_type}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        return web.Response(body=body, headers=headers)

    async def blobs(self, request: web.Request) -> web.Response:
        name, digest = request.match_info["name"], request.match_info["digest"]
        if not self._authorized(request):
            return self._challenge(name)
        return web.Response(body=self._blob(self._layout(name), digest),
                            content_type="application/octet-stream")

    async def __aenter__(self) -> FakeRegistry:
        app = web.Application()
        app.router.add_route("GET", "/token", self.token_endpoint)
        app.router.add_route("POST", "/token", self.token_endpoint)
        app.router.add_route("*", "/v2/{name:.+}/manifests/{ref}", self.manifests)
        app.router.add_route("GET", "/v2/{name:.+}/blobs/{digest}", self.blobs)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.address = f"localhost:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


@pytest.fixture(scope="module")
def two_layer_layout(tmp_path_factory) -> tuple[Path, oci.ImageParts]:
    work = tmp_path_factory.mktemp("two-layer")
    extra_src = work / "extra"
    (extra_src / "data").mkdir(parents=True)
    (extra_src / "data" / "file").write_bytes(os.urandom(4096))
    extra = oci.layer_tar_from_dir(extra_src, work / "extra.tar")
    parts = oci.write_busybox_layout(work / "layout", work, extra_layers=[extra])
    return work / "layout", parts


def left_behind(root: Path) -> dict:
    records = orjson.loads((root / "images.json").read_bytes())["images"] if (root / "images.json").exists() else {}
    return {"blobs": os.listdir(root / "blobs" / "sha256"), "layers": os.listdir(root / "layers"),
            "ingest": os.listdir(root / "ingest"), "records": list(records)}


NOTHING = {"blobs": [], "layers": [], "ingest": [], "records": []}


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


async def test_tampered_layer_fails_and_leaves_nothing(two_layer_layout, tmp_path):
    layout, parts = two_layer_layout
    async with FakeRegistry({"app": layout}) as reg:
        # The second layer's bytes no longer match its digest; the first layer is fine and is
        # unpacked by then, which must be undone too.
        top = parts.layers[1]
        reg.tamper[top.digest] = flip_last_byte((layout / "blobs" / "sha256" / top.digest[7:]).read_bytes())
        store = ImageStore(tmp_path / "images")
        try:
            with pytest.raises(PullError, match="digest"):
                await store.pull(f"{reg.address}/app:latest")
            assert left_behind(tmp_path / "images") == NOTHING
            assert store.list() == [] and store.get(f"{reg.address}/app:latest") is None

            # Served correctly, the same pull succeeds.
            del reg.tamper[top.digest]
            image = await store.pull(f"{reg.address}/app:latest")
            assert image.id == parts.config.digest and len(image.layer_dirs) == 2
        finally:
            await store.close()


async def test_tampered_config_and_manifest_fail(busybox_layout, tmp_path):
    layout, parts = busybox_layout
    async with FakeRegistry({"busybox": layout}) as reg:
        store = ImageStore(tmp_path / "images")
        try:
            reg.tamper[parts.config.digest] = b"{}" + b" " * (parts.config.size - 2)
            with pytest.raises(PullError, match="digest"):
                await store.pull(f"{reg.address}/busybox:latest")
            assert left_behind(tmp_path / "images") == NOTHING
            reg.tamper.clear()

            # Asked for by digest, a manifest with other content is refused.
            reg.tamper[parts.manifest.digest] = (layout / "blobs" / "sha256" / parts.manifest.digest[7:]) \
                .read_bytes() + b" "
            with pytest.raises(PullError, match="digest"):
                await store.pull(f"{reg.address}/busybox@{parts.manifest.digest}")
            assert left_behind(tmp_path / "images") == NOTHING
        finally:
            await store.close()


async def test_layer_not_matching_its_diff_id_fails(tmp_path):
    work = tmp_path / "work"
    layout = oci.Layout(work / "layout")
    tar = oci.layer_tar_from_dir(oci.build_busybox_rootfs(work / "rootfs"), work / "layer.tar")
    blob, _ = layout.add_layer(tar)
    parts = layout.write_image([(blob, "sha256:" + "1" * 64)])
    layout.tag(parts.manifest, "latest")
    async with FakeRegistry({"bad": layout.root}) as reg:
        store = ImageStore(tmp_path / "images")
        try:
            with pytest.raises(PullError, match="diff_id|config says"):
                await store.pull(f"{reg.address}/bad:latest")
            assert left_behind(tmp_path / "images") == NOTHING
        finally:
            await store.close()


async def test_basic_auth(busybox_layout, tmp_path):
    layout, parts = busybox_layout
    async with FakeRegistry({"busybox": layout}, auth="basic") as reg:
        store = ImageStore(tmp_path / "images")
        ref = f"{reg.address}/busybox:latest"
        try:
            with pytest.raises(PullError) as err:
                await store.pull(ref)
            assert err.value.unauthorized and err.value.status == 401
            with pytest.raises(PullError) as err:
                await store.pull(ref, RegistryAuth(username=USER, password="wrong"))
            assert err.value.unauthorized
            assert left_behind(tmp_path / "images") == NOTHING
            image = await store.pull(ref, RegistryAuth(username=USER, password=PASSWORD))
            assert image.id == parts.config.digest
            await store.remove(image.id)
            encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            image = await store.pull(ref, RegistryAuth(auth=encoded))
            assert image.id == parts.config.digest
        finally:
            await store.close()


async def test_bearer_token_auth(busybox_layout, tmp_path):
    layout, parts = busybox_layout
    async with FakeRegistry({"busybox": layout}, auth="bearer") as reg:
        store = ImageStore(tmp_path / "images")
        ref = f"{reg.address}/busybox:latest"
        try:
            with pytest.raises(PullError) as err:
                await store.pull(ref)
            assert err.value.unauthorized
            assert reg.token_requests[-1]["authorization"] == ""

            image = await store.pull(ref, RegistryAuth(username=USER, password=PASSWORD))
            assert image.id == parts.config.digest
            asked = reg.token_requests[-1]
            assert asked["method"] == "GET"
            assert asked["query"] == {"service": "fake-registry", "scope": "repository:busybox:pull"}
            assert f"Bearer {reg.token}" in reg.authorizations
            # One token for the whole pull.
            assert len([r for r in reg.token_requests if r["authorization"]]) == 1
        finally:
            await store.close()


async def test_bearer_with_identity_token_and_registry_token(busybox_layout, tmp_path):
    layout, parts = busybox_layout
    async with FakeRegistry({"busybox": layout}, auth="bearer") as reg:
        ref = f"{reg.address}/busybox:latest"
        store = ImageStore(tmp_path / "a")
        try:
            image = await store.pull(ref, RegistryAuth(identity_token="refresh-me"))
            assert image.id == parts.config.digest
            assert reg.token_requests[-1]["method"] == "POST"
            assert reg.token_requests[-1]["form"]["grant_type"] == "refresh_token"
        finally:
            await store.close()
        store = ImageStore(tmp_path / "b")
        asked = len(reg.token_requests)
        try:
            image = await store.pull(ref, RegistryAuth(registry_token=reg.token))
            assert image.id == parts.config.digest
            assert len(reg.token_requests) == asked
        finally:
            await store.close()
        store = ImageStore(tmp_path / "c")
        try:
            with pytest.raises(PullError) as err:
                await store.pull(ref, RegistryAuth(registry_token="not-the-token"))
            assert err.value.unauthorized
            assert len(reg.token_requests) == asked
        finally:
            await store.close()


async def test_unsafe_layer_entries_are_refused(tmp_path):
    """A layer may not write outside its directory, neither by ``..`` nor through a symlink."""
    outside = tmp_path / "outside"
    outside.mkdir()
    cases = {
        "dotdot": [("../escaped", tarfile.REGTYPE, "")],
        "symlink": [("link", tarfile.SYMTYPE, str(outside)), ("link/escaped", tarfile.REGTYPE, "")],
        "hardlink": [("hl", tarfile.LNKTYPE, "../../outside/target")],
    }
    (outside / "target").write_text("x")
    work = tmp_path / "work"
    layout = oci.Layout(work / "layout")
    for name, entries in cases.items():
        tar = work / f"{name}.tar"
        with tarfile.open(tar, "w") as tf:
            for path, kind, link in entries:
                info = tarfile.TarInfo(path)
                info.type = kind
                info.linkname = link
                data = b"owned" if kind == tarfile.REGTYPE else None
                info.size = len(data) if data else 0
                tf.addfile(info, io.BytesIO(data) if data else None)
        layer = layout.add_layer(tar)
        parts = layout.write_image([layer])
        layout.tag(parts.manifest, name)
    async with FakeRegistry({"evil": layout.root}) as reg:
        store = ImageStore(tmp_path / "images")
        try:
            for name in cases:
                with pytest.raises(PullError):
                    await store.pull(f"{reg.address}/evil:{name}")
                assert left_behind(tmp_path / "images") == NOTHING
            assert os.listdir(outside) == ["target"] and (outside / "target").read_text() == "x"
            assert not (tmp_path / "escaped").exists()
        finally:
            await store.close()
