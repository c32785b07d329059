"""Pulls against a small in-test registry: tampered content, and the basic and bearer auth flows."""

from __future__ import annotations

import base64
import io
import os
import tarfile
from pathlib import Path

import orjson
import pytest

from runtime.images import ImageStore, PullError, RegistryAuth
from tests.fixtures import oci
from tests.fixtures.oci import PASSWORD, USER, FakeRegistry


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


async def test_docker_manifest_list_and_media_types(tmp_path):
    """A Docker manifest list over Docker schema 2 manifests resolves like an OCI index."""
    work = tmp_path / "work"
    layout = oci.Layout(work / "layout")
    tar = oci.layer_tar_from_dir(oci.build_busybox_rootfs(work / "rootfs"), work / "layer.tar")
    layer, diff_id = layout.add_layer(tar)
    layer.media_type = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    manifests = []
    for arch in ("s390x" if oci.host_arch() != "s390x" else "amd64", oci.host_arch()):
        cfg = layout.add_bytes(orjson.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
                                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}),
                               "application/vnd.docker.container.image.v1+json")
        body = orjson.dumps({"schemaVersion": 2,
                             "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                             "config": {"mediaType": cfg.media_type, "size": cfg.size, "digest": cfg.digest},
                             "layers": [{"mediaType": layer.media_type, "size": layer.size, "digest": layer.digest}]})
        m = layout.add_bytes(body, "application/vnd.docker.distribution.manifest.v2+json")
        manifests.append((m, cfg, arch))
    listing = layout.add_bytes(orjson.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": m.media_type, "size": m.size, "digest": m.digest,
                       "platform": {"architecture": arch, "os": "linux"}} for m, _, arch in manifests]}),
        "application/vnd.docker.distribution.manifest.list.v2+json")
    layout.tag(listing, "latest")
    async with FakeRegistry({"docker": layout.root}) as reg:
        store = ImageStore(tmp_path / "images")
        try:
            image = await store.pull(f"{reg.address}/docker")
            mine_manifest, mine_cfg, _ = manifests[1]
            assert image.id == mine_cfg.digest and image.manifest_digest == mine_manifest.digest
            assert image.repo_digests == [f"{reg.address}/docker@{listing.digest}"]
            assert image.config["architecture"] == oci.host_arch()
            assert (image.layer_dirs[0] / "bin" / "busybox").exists()
            assert store.get(f"{reg.address}/docker@{mine_manifest.digest}").id == image.id
        finally:
            await store.close()
