"""Import of OCI layouts (dir and tar) and docker-archives; ``navarch image`` commands; layer details."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import orjson
import pytest

from runtime.images import ImageStore, PullError, cli
from runtime.images.unpack import LayerError, apply_layer
from tests.fixtures import oci
from tests.runtime.conftest import require


def tar_dir(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tf:
        tf.add(src, arcname=".")
    return out


def nothing_left(root: Path) -> bool:
    records = orjson.loads((root / "images.json").read_bytes())["images"] if (root / "images.json").exists() else {}
    return not records and not os.listdir(root / "blobs" / "sha256") and not os.listdir(root / "layers")


async def test_import_oci_layout_dir_and_tar(busybox_layout, tmp_path):
    layout, parts = busybox_layout
    store = ImageStore(tmp_path / "images")
    try:
        # The layout tags its image "latest" only: without a name it is imported untagged.
        [image] = await store.import_archive(layout)
        assert image.id == parts.config.digest and image.repo_tags == []
        [image] = await store.import_archive(tar_dir(layout, tmp_path / "layout.tar"), name="example.com/app")
        assert image.repo_tags == ["example.com/app:latest"]
        assert image.repo_digests == [f"example.com/app@{parts.manifest.digest}"]
        assert (image.layer_dirs[0] / "bin" / "busybox").is_file()
        assert store.get("example.com/app").id == image.id
        assert len(store.list()) == 1
    finally:
        await store.close()


async def test_import_layout_with_full_names_and_an_index(tmp_path):
    work = tmp_path / "work"
    layout = oci.Layout(work / "layout")
    tar = oci.layer_tar_from_dir(oci.build_busybox_rootfs(work / "rootfs"), work / "layer.tar")
    layer = layout.add_layer(tar, compress=False)
    mine = layout.write_image([layer])
    theirs = layout.write_image([layer], arch="s390x" if oci.host_arch() != "s390x" else "amd64")
    index = layout.write_index([(theirs, theirs.config_json["architecture"], None), (mine, oci.host_arch(), None)])
    layout.tag(index, "example.com/multi:v1")
    layout.tag(mine.manifest, "v2", image_name="example.com/single:v2")
    store = ImageStore(tmp_path / "images")
    try:
        images = await store.import_archive(work / "layout")
        # Two entries of index.json, one image: the index resolves to the manifest tagged v2.
        assert [i.id for i in images] == [mine.config.digest] * 2
        assert store.get("example.com/single:v2").repo_tags == ["example.com/multi:v1", "example.com/single:v2"]
        assert not (tmp_path / "images" / "blobs" / "sha256" / theirs.config.digest[7:]).exists()
        image = store.get("example.com/multi:v1")
        assert image.repo_digests == ["example.com/multi@" + index.digest, "example.com/single@" + mine.manifest.digest]
    finally:
        await store.close()


async def test_import_docker_archive(busybox_layout, tmp_path):
    require("skopeo")
    layout, parts = busybox_layout
    archive = tmp_path / "busybox.tar"
    await asyncio.to_thread(oci.skopeo_copy, f"oci:{layout}:latest", f"docker-archive:{archive}:example.com/bb:1.0")
    store = ImageStore(tmp_path / "images")
    try:
        [image] = await store.import_archive(archive)
        assert image.id == parts.config.digest or image.config["rootfs"]["diff_ids"] == parts.diff_ids
        assert image.repo_tags == ["example.com/bb:1.0"] and image.repo_digests == []
        assert image.config["config"]["Cmd"] == ["sh"]
        assert image.diff_ids == parts.diff_ids
        assert os.readlink(image.layer_dirs[0] / "bin" / "ls") == "busybox"
        # Importing again changes nothing.
        again = await store.import_archive(archive)
        assert [i.id for i in again] == [image.id] and len(store.list()) == 1
        await store.remove("example.com/bb:1.0")
        assert nothing_left(tmp_path / "images")
    finally:
        await store.close()


async def test_import_refuses_what_is_not_an_archive(busybox_layout, tmp_path):
    layout, parts = busybox_layout
    store = ImageStore(tmp_path / "images")
    try:
        junk = tmp_path / "junk.tar"
        junk.write_bytes(b"not a tar at all" * 100)
        with pytest.raises(PullError):
            await store.import_archive(junk)
        with pytest.raises(PullError, match="no such file"):
            await store.import_archive(tmp_path / "missing.tar")
        # A layout whose layer blob is corrupt: the import fails and keeps none of it.
        broken = tmp_path / "broken"
        await asyncio.to_thread(subprocess.run, ["cp", "-a", str(layout), str(broken)], check=True)
        blob = broken / "blobs" / "sha256" / parts.layers[0].digest[7:]
        content = blob.read_bytes()
        blob.write_bytes(content[:100] + bytes([content[100] ^ 0xFF]) + content[101:])
        with pytest.raises(PullError, match="digest|size"):
            await store.import_archive(broken, name="example.com/broken")
        assert nothing_left(tmp_path / "images")
    finally:
        await store.close()


def test_cli_import_ls_rm(busybox_layout, tmp_path, capsys):
    layout, parts = busybox_layout
    root = tmp_path / "runtime"
    assert cli.main(["import", str(layout), "--name", "example.com/cli", "--root", str(root)]) == 0
    assert f"imported example.com/cli:latest {parts.config.digest}" in capsys.readouterr().out
    assert cli.main(["--root", str(root), "ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert out[1].split()[:3] == ["example.com/cli", "latest", parts.config.digest[7:20]]
    assert ImageStore(cli.store_root(root)).get("example.com/cli") is not None
    assert cli.main(["rm", "example.com/cli", "--root", str(root)]) == 0
    assert cli.main(["rm", "example.com/cli", "--root", str(root)]) == 1
    assert "not found" in capsys.readouterr().err


def test_cli_pull(busybox_image, tmp_path, capsys):
    root = tmp_path / "runtime"
    assert cli.main(["pull", busybox_image, "--root", str(root)]) == 0
    assert "pulled" in capsys.readouterr().out
    assert ImageStore(cli.store_root(root)).get(busybox_image) is not None
    assert cli.main(["pull", "Not/Valid", "--root", str(root)]) == 1


def _layer(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, **kw) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, oci.FIXED_MTIME
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def test_layer_details(tmp_path):
    """Opaque dirs, whiteouts, hard links, owners, modes, setuid, xattrs, zstd."""
    xattr = _info("bin/cap", pax_headers={"SCHILY.xattr.user.navarch": "yes"})
    data = _layer([
        (_info("etc", tarfile.DIRTYPE, 0o755), None),
        (_info("etc/.wh..wh..opq"), b""),
        (_info("etc/conf", uid=1000, gid=1001, mode=0o640), b"conf"),
        (_info("etc/.wh.old"), b""),
        (_info("bin/su", mode=0o4755), b"su"),
        (_info("bin/su-again", tarfile.LNKTYPE, linkname="bin/su"), None),
        (_info("bin/sh", tarfile.SYMTYPE, linkname="/bin/su"), None),
        (_info("ro", tarfile.DIRTYPE, 0o555), None),
        (_info("ro/file"), b"in a read-only dir"),
        (xattr, b"x"),
        (_info("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3), None),
        (_info("x", tarfile.DIRTYPE, 0o700), None),
        (_info("x/inner"), b"i"),
        (_info("x", mode=0o600), b"file now"),
    ])
    blob = tmp_path / "layer.tar"
    blob.write_bytes(data)
    diff_id = oci.sha256_digest(data)
    for compressed in ("none", "gzip", "zstd"):
        src = blob
        if compressed == "gzip":
            src = tmp_path / "layer.tar.gz"
            subprocess.run(["gzip", "-kf", str(blob)], check=True)
        elif compressed == "zstd":
            require("zstd")
            src = tmp_path / "layer.tar.zst"
            subprocess.run(["zstd", "-qf", str(blob), "-o", str(src)], check=True)
        dest = tmp_path / f"out-{compressed}"
        stats = apply_layer(src, dest, diff_id)
        assert os.getxattr(dest / "etc", "trusted.overlay.opaque") == b"y"
        assert not (dest / "etc" / ".wh..wh..opq").exists()
        wh = os.lstat(dest / "etc" / "old")
        assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
        conf = os.lstat(dest / "etc" / "conf")
        assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (1000, 1001, 0o640)
        su = os.lstat(dest / "bin" / "su")
        assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_nlink == 2
        assert os.lstat(dest / "bin" / "su-again").st_ino == su.st_ino
        assert os.readlink(dest / "bin" / "sh") == "/bin/su"
        assert stat.S_IMODE(os.lstat(dest / "ro").st_mode) == 0o555
        assert (dest / "ro" / "file").read_bytes() == b"in a read-only dir"
        assert os.getxattr(dest / "bin" / "cap", "user.navarch") == b"yes"
        assert os.lstat(dest / "dev" / "null").st_rdev == os.makedev(1, 3)
        assert int(os.lstat(dest / "etc" / "conf").st_mtime) == oci.FIXED_MTIME
        assert (dest / "x").read_bytes() == b"file now" and stat.S_IMODE(os.lstat(dest / "x").st_mode) == 0o600
        assert stats.size == len(b"conf" + b"su" + b"in a read-only dir" + b"x" + b"i" + b"file now")
    with pytest.raises(LayerError, match="config says"):
        apply_layer(blob, tmp_path / "wrong", "sha256:" + "2" * 64)
    assert not (tmp_path / "wrong").exists()
