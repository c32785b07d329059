"""Pulls from a real docker-registry: by tag, by digest, through an index, shared, removed, restarted."""

from __future__ import annotations

import asyncio
import os
import tarfile
import time
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession, web

from runtime.images import ImageNotFound, ImageStore, InvalidReference, PullError, imagestore
from tests.fixtures import oci


def other_arch() -> str:
    return "arm64" if oci.host_arch() != "arm64" else "amd64"


@pytest.fixture(scope="module")
def multiarch_image(registry, busybox_layout, tmp_path_factory) -> tuple[str, oci.ImageParts, oci.ImageParts]:
    """``multi:latest``: an index over the busybox image for this arch and one for another arch."""
    src, _ = busybox_layout
    work = tmp_path_factory.mktemp("multi")
    layout = oci.Layout(work / "layout")
    tar = oci.layer_tar_from_dir(oci.build_busybox_rootfs(work / "rootfs"), work / "layer.tar")
    layer = layout.add_layer(tar)
    mine = layout.write_image([layer], arch=oci.host_arch())
    theirs = layout.write_image([layer], arch=other_arch(), config={"Cmd": ["echo", "other"]})
    index = layout.write_index([(theirs, other_arch(), None), (mine, oci.host_arch(), None)])
    layout.tag(index, "latest")
    ref = oci.push_layout(layout.root, "latest", registry.address, "multi", all_images=True)
    return ref, mine, theirs


@pytest.fixture(scope="module")
def layered_image(registry, tmp_path_factory) -> tuple[str, oci.ImageParts]:
    """``layered:latest``: the busybox layer plus a layer with /data/hello and a whiteout of /etc/group."""
    work = tmp_path_factory.mktemp("layered")
    extra_src = work / "extra"
    (extra_src / "data").mkdir(parents=True)
    (extra_src / "data" / "hello").write_text("hello\n")
    wh = tarfile.TarInfo("etc/.wh.group")
    wh.mtime = oci.FIXED_MTIME
    extra = oci.layer_tar_from_dir(extra_src, work / "extra.tar", extra=[(wh, b"")])
    parts = oci.write_busybox_layout(work / "layout", work, extra_layers=[extra])
    return oci.push_layout(work / "layout", "latest", registry.address, "layered"), parts


class CountingProxy:
    """An HTTP proxy in front of the registry that counts blob GETs."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.blob_gets: list[str] = []
        self.manifest_gets = 0
        self.runner: web.AppRunner | None = None
        self.address = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and "/blobs/" in request.path:
            self.blob_gets.append(request.path.rsplit("/", 1)[1])
        if request.method == "GET" and "/manifests/" in request.path:
            self.manifest_gets += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with ClientSession(auto_decompress=False) as s, \
                s.request(request.method, f"http://{self.upstream}{request.path_qs}", headers=headers,
                          data=await request.read(), allow_redirects=False) as up:
            resp = web.StreamResponse(status=up.status)
            for k, v in up.headers.items():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    resp.headers[k] = v
            if up.content_length is not None:
                resp.content_length = up.content_length
            await resp.prepare(request)
            if request.method != "HEAD":
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
            await resp.write_eof()
            return resp

    async def __aenter__(self) -> CountingProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.address = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


def blob_files(root: Path) -> set[str]:
    return {"sha256:" + n for n in os.listdir(root / "blobs" / "sha256")}


def layer_dirs(root: Path) -> set[str]:
    return set(os.listdir(root / "layers"))


async def test_pull_by_tag(busybox_image, busybox_layout, tmp_path):
    _, parts = busybox_layout
    store = ImageStore(tmp_path / "images")
    try:
        image = await store.pull(busybox_image)
        assert image.id == parts.config.digest
        assert image.repo_tags == [busybox_image]
        assert image.repo_digests == [f"{busybox_image.rsplit(':', 1)[0]}@{parts.manifest.digest}"]
        assert image.size == parts.config.size + sum(b.size for b in parts.layers)
        assert image.config["config"]["Cmd"] == ["sh"]
        assert image.layer_dirs == [tmp_path / "images" / "layers" / parts.diff_ids[0].split(":")[1]]
        rootfs = image.layer_dirs[0]
        assert os.access(rootfs / "bin" / "busybox", os.X_OK)
        assert os.readlink(rootfs / "bin" / "sh") == "busybox"
        assert "nobody:x:65534" in (rootfs / "etc" / "passwd").read_text()
        assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
        info = image.driver_info()
        assert (info.id, info.config["Cmd"], info.layer_dirs) == (image.id, ["sh"], image.layer_dirs)
        assert store.get(busybox_image).id == image.id
        assert store.get(image.id).id == image.id
        assert store.get(image.id.split(":")[1][:12]).id == image.id
        assert store.get(image.repo_digests[0]).id == image.id
        assert [i.id for i in store.list()] == [image.id]
        used, inodes, mountpoint = store.fs_info()
        assert used >= image.size + (rootfs / "bin" / "busybox").stat().st_size
        assert inodes > 3 and mountpoint == str(tmp_path / "images")
        assert blob_files(tmp_path / "images") == {parts.manifest.digest, parts.config.digest,
                                                  *(b.digest for b in parts.layers)}
    finally:
        await store.close()


async def test_pull_by_digest(busybox_image, busybox_layout, tmp_path):
    _, parts = busybox_layout
    name = busybox_image.rsplit(":", 1)[0]
    store = ImageStore(tmp_path / "images")
    try:
        image = await store.pull(f"{name}@{parts.manifest.digest}")
        assert image.id == parts.config.digest
        assert image.repo_tags == []
        assert image.repo_digests == [f"{name}@{parts.manifest.digest}"]
        assert store.get(busybox_image) is None
        assert store.get(f"{name}@{parts.manifest.digest}").id == image.id
        with pytest.raises(PullError) as err:
            await store.pull(f"{name}@sha256:{'0' * 64}")
        assert err.value.not_found
    finally:
        await store.close()


async def test_pull_resolves_index_for_this_platform(multiarch_image, tmp_path):
    ref, mine, theirs = multiarch_image
    store = ImageStore(tmp_path / "images")
    try:
        image = await store.pull(ref)
        assert image.id == mine.config.digest
        assert image.config["architecture"] == oci.host_arch()
        assert image.repo_tags == [ref]
        held = blob_files(tmp_path / "images")
        assert mine.manifest.digest in held
        assert theirs.config.digest not in held and theirs.manifest.digest not in held
        assert image.repo_digests[0].split("@")[1] not in (mine.manifest.digest, theirs.manifest.digest)
        assert (image.layer_dirs[0] / "bin" / "busybox").exists()
    finally:
        await store.close()


async def test_concurrent_pulls_share_one_download(registry, busybox_layout, layered_image, tmp_path):
    _, parts = busybox_layout
    _, layered = layered_image
    async with CountingProxy(registry.address) as proxy:
        store = ImageStore(tmp_path / "images")
        try:
            ref = f"{proxy.address}/busybox:latest"
            images = await asyncio.gather(*(store.pull(ref) for _ in range(5)))
            assert {i.id for i in images} == {parts.config.digest}
            assert sorted(proxy.blob_gets) == sorted([parts.config.digest, *(b.digest for b in parts.layers)])

            # A second image sharing the busybox layer downloads only what it does not have.
            proxy.blob_gets.clear()
            both = await asyncio.gather(store.pull(f"{proxy.address}/layered:latest"),
                                        store.pull(f"{proxy.address}/layered"))
            assert both[0].id == both[1].id == layered.config.digest
            assert sorted(proxy.blob_gets) == sorted([layered.config.digest, layered.layers[1].digest])

            # Present blobs are not fetched again; layers are shared on disk.
            proxy.blob_gets.clear()
            again = await store.pull(ref)
            assert again.id == parts.config.digest and proxy.blob_gets == []
            assert both[0].layer_dirs[0] == images[0].layer_dirs[0]
        finally:
            await store.close()


async def test_whiteouts_become_overlay_whiteouts(layered_image, tmp_path):
    ref, parts = layered_image
    store = ImageStore(tmp_path / "images")
    try:
        image = await store.pull(ref)
        top = image.layer_dirs[1]
        assert (top / "data" / "hello").read_text() == "hello\n"
        st = os.lstat(top / "etc" / "group")
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0) and (st.st_mode & 0o170000) == 0o020000
        assert not (top / "etc" / ".wh.group").exists()
        assert (image.layer_dirs[0] / "etc" / "group").read_text().startswith("root:")
    finally:
        await store.close()


async def test_remove_keeps_what_other_images_use(busybox_image, busybox_layout, layered_image, tmp_path):
    _, parts = busybox_layout
    layered_ref, layered = layered_image
    root = tmp_path / "images"
    store = ImageStore(root)
    try:
        plain = await store.pull(busybox_image)
        layered_img = await store.pull(layered_ref)
        await store.remove(busybox_image)
        assert store.get(busybox_image) is None and store.get(plain.id) is None
        assert [i.id for i in store.list()] == [layered_img.id]
        # The busybox layer is shared: it stays; busybox's own config and manifest go.
        assert parts.layers[0].digest in blob_files(root)
        assert parts.config.digest not in blob_files(root) and parts.manifest.digest not in blob_files(root)
        assert layer_dirs(root) == {d.split(":")[1] for d in layered.diff_ids}
        await store.remove(layered_img.id)
        assert store.list() == [] and blob_files(root) == set() and layer_dirs(root) == set()
        with pytest.raises(ImageNotFound):
            await store.remove(layered_img.id)
    finally:
        await store.close()


async def test_records_survive_a_restart(busybox_image, tmp_path):
    root = tmp_path / "images"
    store = ImageStore(root)
    image = await store.pull(busybox_image)
    await store.close()
    again = ImageStore(root)
    try:
        got = again.get(busybox_image)
        assert got is not None
        assert (got.id, got.repo_tags, got.repo_digests, got.layer_dirs, got.size) == \
               (image.id, image.repo_tags, image.repo_digests, image.layer_dirs, image.size)
        assert got.config == image.config
        assert again.fs_info() == store.fs_info()
        await again.remove(busybox_image)
    finally:
        await again.close()
    # A third store sees the removal.
    assert ImageStore(root).list() == []


async def test_a_store_sees_changes_made_by_another(busybox_image, layered_image, tmp_path):
    root = tmp_path / "images"
    a, b = ImageStore(root), ImageStore(root)
    try:
        await a.pull(busybox_image)
        await b.pull(layered_image[0])
        assert {t for i in a.list() for t in i.repo_tags} == {busybox_image, layered_image[0]}
        assert orjson.loads((root / "images.json").read_bytes())["images"].keys() == {i.id for i in b.list()}
    finally:
        await a.close()
        await b.close()


async def test_tag_moves_to_the_newly_pulled_image(registry, busybox_layout, layered_image, tmp_path):
    _, parts = busybox_layout
    _, layered = layered_image
    ref = f"{registry.address}/moving:v1"
    oci.push_layout(busybox_layout[0], "latest", registry.address, "moving", dest_tag="v1")
    store = ImageStore(tmp_path / "images")
    try:
        first = await store.pull(ref)
        await asyncio.to_thread(oci.skopeo_copy, f"docker://{registry.address}/layered:latest", f"docker://{ref}")
        second = await store.pull(ref)
        assert (first.id, second.id) == (parts.config.digest, layered.config.digest)
        assert store.get(ref).id == second.id
        assert store.get(first.id).repo_tags == [] and store.get(first.id).repo_digests
    finally:
        await store.close()


async def test_pull_errors(registry, tmp_path):
    store = ImageStore(tmp_path / "images")
    try:
        with pytest.raises(InvalidReference):
            await store.pull("Bad/Ref")
        with pytest.raises(PullError) as err:
            await store.pull(f"{registry.address}/nothing-here:latest")
        assert err.value.not_found
        assert "MANIFEST_UNKNOWN" in str(err.value) or "NAME_UNKNOWN" in str(err.value)
        assert store.list() == [] and blob_files(tmp_path / "images") == set()
    finally:
        await store.close()


async def test_pull_docker_schema2_from_registry(registry, busybox_layout, tmp_path):
    layout, parts = busybox_layout
    ref = f"{registry.address}/v2s2:latest"
    await asyncio.to_thread(oci.skopeo_copy, f"oci:{layout}:latest", f"docker://{ref}", extra=["--format", "v2s2"])
    store = ImageStore(tmp_path / "images")
    try:
        image = await store.pull(ref)
        manifest = orjson.loads((tmp_path / "images" / "blobs" / "sha256" / image.manifest_digest[7:]).read_bytes())
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert image.diff_ids == parts.diff_ids
        assert (image.layer_dirs[0] / "bin" / "busybox").exists()
    finally:
        await store.close()


async def test_leftovers_of_a_dead_process_are_swept(busybox_image, tmp_path, monkeypatch):
    root = tmp_path / "images"
    store = ImageStore(root)
    image = await store.pull(busybox_image)
    await store.close()

    # What a process killed mid-pull leaves: unrecorded blobs and layers, temporary files and
    # directories. Those older than the cutoff go; newer ones may be another process's work.
    def leave(tag: str) -> list[Path]:
        name = tag * 64
        paths = [root / "blobs" / "sha256" / name, root / "layers" / name, root / "ingest" / f"blob-{tag}",
                 root / "layers" / f"tmp-{tag}"]
        paths[0].write_bytes(b"orphan")
        (paths[1] / "etc").mkdir(parents=True)
        paths[2].write_bytes(b"partial")
        paths[3].mkdir()
        return paths

    old = leave("a")
    await asyncio.sleep(0.05)
    cutoff = time.time()
    await asyncio.sleep(0.05)
    fresh = leave("b")
    monkeypatch.setattr(imagestore, "_wall_clock", lambda: cutoff + imagestore.STALE_TEMP_SECONDS)
    later = ImageStore(root)
    try:
        await later.pull(busybox_image)
        assert [p.exists() for p in old] == [False] * 4
        assert [p.exists() for p in fresh] == [True] * 4
        assert later.get(busybox_image).id == image.id and all(d.exists() for d in image.layer_dirs)
    finally:
        await later.close()


async def test_pulls_of_one_image_by_different_refs_share_downloads_and_unpacks(registry, layered_image, tmp_path,
                                                                               monkeypatch):
    ref, parts = layered_image
    name = ref.rsplit(":", 1)[0]
    unpacks = []
    real_unpack = imagestore.unpack_to

    def counting_unpack(layers_dir, src, diff_id):
        unpacks.append(diff_id)
        return real_unpack(layers_dir, src, diff_id)

    monkeypatch.setattr(imagestore, "unpack_to", counting_unpack)
    async with CountingProxy(registry.address) as proxy:
        store = ImageStore(tmp_path / "images")
        try:
            via = ref.replace(registry.address, proxy.address)
            images = await asyncio.gather(store.pull(via), store.pull(f"{proxy.address}/{name.split('/', 1)[1]}"
                                                                      f"@{parts.manifest.digest}"))
            assert {i.id for i in images} == {parts.config.digest}
            assert sorted(proxy.blob_gets) == sorted([parts.config.digest, *(b.digest for b in parts.layers)])
            assert sorted(unpacks) == sorted(parts.diff_ids)
            image = store.get(via)
            assert sorted(image.repo_digests) == [f"{via.rsplit(':', 1)[0]}@{parts.manifest.digest}"]
        finally:
            await store.close()
