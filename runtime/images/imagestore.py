"""The node's image store: image records over the content store and the unpacked layers.

Layout of the root: ``blobs/sha256/<hex>`` (content store), ``layers/<diff_id hex>/`` (a layer
unpacked once, shared by all images that have it), ``images.json`` (the records), ``lock``.

A record is keyed by image id (``sha256:<config digest>``) and holds its repo tags, repo digests,
the manifests that led to it, its config and its layers (``records.py`` keeps the file, shared
with other processes such as ``navarch image import`` beside a running runtime).

Pulls of one reference share a single task; blob downloads and layer unpacks are shared by digest
across pulls; blobs and layers present are not fetched again. What a running pull or import uses
is pinned so removal never takes it away. A failed pull or import removes what it added unless a
record or another operation holds it. Removal drops the record, then every blob and layer no
other record uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import structlog

from runtime.driver import ImageInfo
from runtime.images import archive, reference
from runtime.images.errors import ImageNotFound, InvalidReference, PullError
from runtime.images.records import RecordFile
from runtime.images.registry import (
    Manifest,
    RegistryAuth,
    RegistryClient,
    manifest_media_type,
    select_platform,
)
from runtime.images.store import ContentStore, check_digest
from runtime.images.unpack import LayerStats, Pipe, tree_stats, unpack_to

log = structlog.get_logger(component="runtime.images")

DOWNLOADS_AT_ONCE = 4
STALE_TEMP_SECONDS = 3600
_HEX_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{3,64})")


@dataclass
class Image:
    id: str                      # "sha256:<config digest hex>"
    repo_tags: list[str]         # "domain/path:tag"
    repo_digests: list[str]      # "domain/path@sha256:..."
    size: int                    # bytes of config and layer blobs
    config: dict                 # the whole OCI image config
    layer_dirs: list[Path]       # unpacked layers, lowest first
    manifest_digest: str = ""    # the platform manifest
    layer_digests: list[str] = field(default_factory=list)
    diff_ids: list[str] = field(default_factory=list)
    created_at: int = 0          # Unix ns when the store first got it

    @property
    def user(self) -> str:
        """The image's ``User`` ("" for root by default)."""
        return (self.config.get("config") or {}).get("User", "") or ""

    def driver_info(self) -> ImageInfo:
        return ImageInfo(id=self.id, config=dict(self.config.get("config") or {}), layer_dirs=list(self.layer_dirs))


def _wall_clock() -> float:
    return time.time()


def _record_blobs(rec: dict) -> set[str]:
    out = {m["digest"] for m in rec.get("manifests", [])}
    out.add(rec["config"]["digest"])
    out.update(layer["digest"] for layer in rec.get("layers", []))
    return out


def _record_layers(rec: dict) -> set[str]:
    return {layer["diff_id"] for layer in rec.get("layers", [])}


class _Pins:
    """What one operation holds (blob digests and layer diff_ids), counted across operations."""

    def __init__(self, counter: Counter):
        self.counter = counter
        self.held: set[str] = set()
        self.tasks: list[asyncio.Future] = []

    def add(self, key: str) -> None:
        if key not in self.held:
            self.held.add(key)
            self.counter[key] += 1

    def release(self) -> None:
        for key in self.held:
            self.counter[key] -= 1
            if self.counter[key] <= 0:
                del self.counter[key]
        self.held = set()


class ImageStore:
    def __init__(self, root: Path, insecure_registries: Sequence[str] = ()):
        self.root = Path(root)
        self.insecure_registries = tuple(insecure_registries)
        self.content = ContentStore(self.root)
        self.layers_dir = self.root / "layers"
        self.layers_dir.mkdir(parents=True, exist_ok=True)
        self.records = RecordFile(self.root)
        # Registry requests by kind, for observing sharing: {"blob": n, ...}.
        self.request_counts: Counter = Counter()
        self._configs: dict[str, dict] = {}
        self._layer_stats: dict[str, LayerStats] = {}
        self._pins: Counter = Counter()
        self._pulls: dict[str, asyncio.Task] = {}
        self._blob_tasks: dict[str, asyncio.Task] = {}
        self._unpack_tasks: dict[str, asyncio.Task] = {}
        self._state_lock = asyncio.Lock()
        self._gc_lock = asyncio.Lock()
        self._download_slots = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self._session: aiohttp.ClientSession | None = None
        # Downloads and unpacks hold a thread each for a long time: their own pool, so that they
        # never starve the event loop's default executor that the rest of the process relies on.
        self._pool_: concurrent.futures.ThreadPoolExecutor | None = None
        self._tidied = False
        self._reload_if_changed()

    # -- records ---------------------------------------------------------------------------------

    @property
    def _state(self) -> dict:
        return self.records.state

    def _reload_if_changed(self) -> None:
        if self.records.refresh():
            for rec in self._state["images"].values():
                for layer in rec["layers"]:
                    if "unpacked" in layer:
                        self._layer_stats.setdefault(layer["diff_id"], LayerStats(**layer["unpacked"]))

    async def _update(self, mutate: Callable[[dict], object]):
        async with self._state_lock:
            return await asyncio.to_thread(self.records.update, mutate)

    # -- reading -------------------------------------------------------------------------------

    def _config(self, digest: str) -> dict:
        cfg = self._configs.get(digest)
        if cfg is None:
            try:
                cfg = orjson.loads(self.content.read(digest))
            except FileNotFoundError:
                cfg = {}
            self._configs[digest] = cfg
        return cfg

    def _image(self, rec: dict) -> Image:
        return Image(
            id=rec["id"],
            repo_tags=list(rec["repo_tags"]),
            repo_digests=list(rec["repo_digests"]),
            size=rec["size"],
            config=self._config(rec["config"]["digest"]),
            layer_dirs=[self.layers_dir / layer["diff_id"].split(":", 1)[1] for layer in rec["layers"]],
            manifest_digest=rec.get("manifest", ""),
            layer_digests=[layer["digest"] for layer in rec["layers"]],
            diff_ids=[layer["diff_id"] for layer in rec["layers"]],
            created_at=rec.get("created_at", 0),
        )

    def list(self) -> list[Image]:
        self._reload_if_changed()
        return [self._image(rec) for rec in self._state["images"].values()]

    def _find(self, ref_or_id: str) -> dict | None:
        images = self._state["images"]
        s = (ref_or_id or "").strip()
        if not s:
            return None
        if reference.is_digest(s) and s in images:
            return images[s]
        if re.fullmatch(r"[0-9a-f]{64}", s) and "sha256:" + s in images:
            return images["sha256:" + s]
        try:
            r = reference.parse(s)
        except InvalidReference:
            r = None
        if r is not None:
            for rec in images.values():
                if r.digest:
                    wanted = reference.with_digest(r.name, r.digest)
                    if wanted in rec["repo_digests"]:
                        return rec
                    names = {d.split("@", 1)[0] for d in rec["repo_digests"]} | \
                            {t.rsplit(":", 1)[0] for t in rec["repo_tags"]}
                    if r.name in names and r.digest in {m["digest"] for m in rec["manifests"]}:
                        return rec
                elif r.tagged in rec["repo_tags"]:
                    return rec
        m = _HEX_PREFIX.fullmatch(s)
        if m:
            hits = [rec for key, rec in images.items() if key.split(":", 1)[1].startswith(m.group(1))]
            if len(hits) == 1:
                return hits[0]
        return None

    def get(self, ref_or_id: str) -> Image | None:
        """By id (``sha256:<hex>``, the hex, a unique hex prefix), ``name:tag`` or ``name@digest``."""
        self._reload_if_changed()
        rec = self._find(ref_or_id)
        return self._image(rec) if rec is not None else None

    def fs_info(self) -> tuple[int, int, str]:
        """(bytes used, inodes used, mountpoint) of the images' blobs and unpacked layers."""
        self._reload_if_changed()
        blobs: dict[str, int] = {}
        layers: dict[str, LayerStats] = {}
        for rec in self._state["images"].values():
            for m in rec["manifests"]:
                blobs[m["digest"]] = m["size"]
            blobs[rec["config"]["digest"]] = rec["config"]["size"]
            for layer in rec["layers"]:
                blobs[layer["digest"]] = layer["size"]
                stats = self._layer_stats.get(layer["diff_id"])
                if stats is not None:
                    layers[layer["diff_id"]] = stats
        used = sum(blobs.values()) + sum(s.size for s in layers.values())
        inodes = len(blobs) + sum(s.inodes for s in layers.values())
        return used, inodes, str(self.root)

    # -- lifecycle -----------------------------------------------------------------------------

    async def _ready(self) -> None:
        if not self._tidied:
            self._tidied = True
            await asyncio.to_thread(self._tidy)

    def _tidy(self) -> None:
        """(thread) Drop what a process that died left behind: temporary files, and blobs and layers
        no record holds. Only things untouched for an hour go (by ctime, which renames and unpacks
        set), so that another process's pull in progress keeps its work."""
        cutoff = _wall_clock() - STALE_TEMP_SECONDS
        used: set[str] = set()
        for rec in self.records.state["images"].values():
            used |= _record_blobs(rec) | _record_layers(rec)

        def stale(entry: os.DirEntry) -> bool:
            try:
                return entry.stat(follow_symlinks=False).st_ctime < cutoff
            except FileNotFoundError:
                return False

        for entry in os.scandir(self.content.ingest_dir):
            if stale(entry):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        for entry in os.scandir(self.layers_dir):
            orphan = len(entry.name) == 64 and "sha256:" + entry.name not in used
            if (entry.name.startswith("tmp-") or orphan) and stale(entry):
                shutil.rmtree(entry.path, ignore_errors=True)
        for entry in os.scandir(self.content.blob_dir):
            if "sha256:" + entry.name not in used and stale(entry):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120),
                connector=aiohttp.TCPConnector(limit=16),
            )
        return self._session

    @property
    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool_ is None:
            self._pool_ = concurrent.futures.ThreadPoolExecutor(max_workers=2 * DOWNLOADS_AT_ONCE + 2,
                                                                thread_name_prefix="image-io")
        return self._pool_

    async def close(self) -> None:
        """Cancel running pulls and close the HTTP session."""
        tasks = [*self._pulls.values(), *self._blob_tasks.values(), *self._unpack_tasks.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._pool_ is not None:
            self._pool_.shutdown(wait=False)
            self._pool_ = None

    # -- pulling -------------------------------------------------------------------------------

    async def pull(self, ref: str, auth: RegistryAuth | None = None) -> Image:
        """Pull ``ref`` for this platform; concurrent pulls of the same reference share one pull.

        Raises ``InvalidReference`` for a malformed ref and ``PullError`` for anything else.
        """
        r = reference.parse(ref)
        key = str(r)
        task = self._pulls.get(key)
        if task is None:
            task = asyncio.create_task(self._pull(r, auth), name=f"image pull {key}")
            self._pulls[key] = task
            task.add_done_callback(lambda t, k=key: self._task_done(self._pulls, k, t))
        return await asyncio.shield(task)

    @staticmethod
    def _task_done(table: dict, key: str, task: asyncio.Task) -> None:
        if table.get(key) is task:
            del table[key]
        if not task.cancelled():
            task.exception()      # retrieved: every waiter gets it through its own await

    async def _pull(self, r: reference.Reference, auth: RegistryAuth | None) -> Image:
        await self._ready()
        client = RegistryClient(self._http(), r, auth, self.insecure_registries, on_blob_get=self._count_blob)
        pins = _Pins(self._pins)
        started = time.monotonic()
        try:
            top = await self._top_manifest(client, r, pins)
            manifest = await self._platform_manifest(client, top, pins)
            rec = await self._materialize(manifest, top, pins, client)
            tag = r.tagged if not r.digest else ""
            rec["repo_tags"] = [tag] if tag else []
            rec["repo_digests"] = [reference.with_digest(r.name, top.digest)]
            stored = await self._update(lambda state: self._merge(state, rec))
            log.info("image pulled", image=str(r), id=stored["id"], size=stored["size"],
                     seconds=round(time.monotonic() - started, 3))
            return self._image(stored)
        except BaseException as e:
            log.warning("image pull failed", image=str(r), error=str(e) or type(e).__name__)
            await self._abandon(pins)
            raise
        finally:
            pins.release()

    def _count_blob(self, digest: str) -> None:
        self.request_counts["blob"] += 1

    async def _top_manifest(self, client: RegistryClient, r: reference.Reference, pins: _Pins) -> Manifest:
        digest = r.digest
        if not digest:
            self.request_counts["manifest_head"] += 1
            with contextlib.suppress(PullError):
                digest = await client.resolve(r.tag) or ""
        if digest:
            local = await self._local_manifest(digest, pins)
            if local is not None:
                return local
        self.request_counts["manifest"] += 1
        m = await client.get_manifest(digest or r.tag)
        await self._keep_manifest(m, pins)
        return m

    async def _platform_manifest(self, client: RegistryClient | None, top: Manifest, pins: _Pins) -> Manifest:
        if not top.is_index:
            return top
        desc = select_platform(top.json)
        digest = check_digest(desc.get("digest", ""))
        m = await self._local_manifest(digest, pins)
        if m is None:
            if client is None:
                raise PullError(f"index {top.digest}: manifest {digest} is missing")
            self.request_counts["manifest"] += 1
            m = await client.get_manifest(digest)
            await self._keep_manifest(m, pins)
        if m.is_index:
            raise PullError(f"index {top.digest}: nested indexes are not supported", code="MANIFEST_INVALID")
        return m

    async def _local_manifest(self, digest: str, pins: _Pins) -> Manifest | None:
        async with self._gc_lock:
            pins.add(digest)
            if not self.content.has(digest):
                return None
        body = await asyncio.to_thread(self.content.read, digest)
        return Manifest(digest, manifest_media_type(body, ""), body)

    async def _keep_manifest(self, m: Manifest, pins: _Pins) -> None:
        pins.add(m.digest)
        await asyncio.to_thread(self.content.write_bytes, m.body, m.digest)

    async def _materialize(self, manifest: Manifest, top: Manifest, pins: _Pins,
                           client: RegistryClient | None) -> dict:
        """Make config and layers of ``manifest`` present (fetching with ``client`` if given);
        returns the image record without names."""
        doc = manifest.json
        cfg_desc = doc.get("config") or {}
        layer_descs = doc.get("layers")
        if not isinstance(layer_descs, list) or not cfg_desc:
            raise PullError(f"manifest {manifest.digest}: no config or layers", code="MANIFEST_INVALID")
        cfg_digest = check_digest(cfg_desc.get("digest", ""))
        cfg_size = int(cfg_desc.get("size", -1))
        await self._ensure_blob(cfg_digest, cfg_size, pins, client)
        config = orjson.loads(await asyncio.to_thread(self.content.read, cfg_digest))
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layer_descs):
            raise PullError(f"image config {cfg_digest}: {len(diff_ids)} diff_ids for {len(layer_descs)} layers",
                            code="MANIFEST_INVALID")
        layers = []
        for desc, diff_id in zip(layer_descs, diff_ids, strict=True):
            layers.append({"digest": check_digest(desc.get("digest", "")), "size": int(desc.get("size", -1)),
                           "mediaType": desc.get("mediaType", ""), "diff_id": check_digest(diff_id)})
        results = await asyncio.gather(*(self._ensure_layer(layer, pins, client) for layer in layers),
                                       return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                raise res
        for layer, stats in zip(layers, results, strict=True):
            layer["unpacked"] = {"size": stats.size, "inodes": stats.inodes}
            if layer["size"] < 0:
                layer["size"] = await asyncio.to_thread(self.content.size, layer["digest"])
        if cfg_size < 0:
            cfg_size = await asyncio.to_thread(self.content.size, cfg_digest)
        manifests = [{"digest": top.digest, "size": len(top.body)}]
        if manifest.digest != top.digest:
            manifests.append({"digest": manifest.digest, "size": len(manifest.body)})
        self._configs[cfg_digest] = config
        return {
            "id": cfg_digest,
            "manifest": manifest.digest,
            "manifests": manifests,
            "config": {"digest": cfg_digest, "size": cfg_size},
            "layers": layers,
            "size": cfg_size + sum(layer["size"] for layer in layers),
            "created_at": time.time_ns(),
        }

    async def _shared(self, table: dict[str, asyncio.Task], key: str, make, pins: _Pins,
                      also: tuple[dict[str, asyncio.Task], str] | None = None):
        """Run ``make()`` once per ``key`` however many operations want it (with ``make`` None: only
        join one already running); ``also`` lists the task under a second table and key too."""
        task = table.get(key)
        if task is None:
            if make is None:
                return None
            task = asyncio.create_task(make(), name=f"image {key}")
            table[key] = task
            task.add_done_callback(lambda t: self._task_done(table, key, t))
            if also is not None:
                other, other_key = also
                other[other_key] = task
                task.add_done_callback(lambda t: self._task_done(other, other_key, t))
        pins.tasks.append(task)
        return await asyncio.shield(task)

    async def _ensure_blob(self, digest: str, size: int, pins: _Pins, client: RegistryClient | None) -> None:
        async with self._gc_lock:
            pins.add(digest)
            if self.content.has(digest):
                return
        if client is None and digest not in self._blob_tasks:
            raise PullError(f"blob {digest} is missing from the archive")

        async def download():
            async with self._download_slots:
                if not self.content.has(digest):
                    await client.download_blob(digest, size, self.content, executor=self._pool)

        await self._shared(self._blob_tasks, digest, download, pins)

    async def _ensure_layer(self, layer: dict, pins: _Pins, client: RegistryClient | None) -> LayerStats:
        """Make the layer's blob and unpacked directory present, each at most once at a time. A layer
        neither downloaded nor being downloaded is unpacked while it downloads."""
        diff_id, digest = layer["diff_id"], layer["digest"]
        final = self.layers_dir / diff_id.split(":", 1)[1]
        async with self._gc_lock:
            pins.add(diff_id)
            pins.add(digest)
            present = final.is_dir()
            blob_present = self.content.has(digest)
        if not present and diff_id in self._unpack_tasks:
            await self._shared(self._unpack_tasks, diff_id, None, pins)
            present = True
        if not present and not blob_present and client is not None and digest not in self._blob_tasks:
            return await self._shared(self._unpack_tasks, diff_id, lambda: self._fetch_unpacking(client, layer),
                                      pins, also=(self._blob_tasks, digest))
        # Records hold blob and layer both: make sure of the blob even when the layer is there.
        await self._ensure_blob(digest, layer["size"], pins, client)
        if present or final.is_dir():
            stats = self._layer_stats.get(diff_id)
            if stats is None:
                stats = self._layer_stats[diff_id] = await asyncio.to_thread(tree_stats, final)
            return stats

        async def unpack():
            loop = asyncio.get_running_loop()
            _, stats = await loop.run_in_executor(self._pool, unpack_to, self.layers_dir,
                                                  self.content.path(digest), diff_id)
            self._layer_stats[diff_id] = stats
            return stats

        return await self._shared(self._unpack_tasks, diff_id, unpack, pins)

    async def _fetch_unpacking(self, client: RegistryClient, layer: dict) -> LayerStats:
        """Download a layer blob and unpack it from the same bytes as they arrive. The directory is
        renamed into place only after the blob verified (the pipe ends only then) and the
        uncompressed stream matched its diff_id."""
        diff_id, digest = layer["diff_id"], layer["digest"]
        loop = asyncio.get_running_loop()
        async with self._download_slots:
            pipe = Pipe()

            def unpack():
                try:
                    return unpack_to(self.layers_dir, pipe, diff_id)
                except BaseException:
                    pipe.abandon()
                    raise

            unpacking = loop.run_in_executor(self._pool, unpack)
            try:
                await client.download_blob(digest, layer["size"], self.content, tee=pipe.feed, executor=self._pool)
            except BaseException as e:
                pipe.fail(str(e) or type(e).__name__)
                await asyncio.gather(unpacking, return_exceptions=True)
                raise
            pipe.close()
            _, stats = await unpacking
        self._layer_stats[diff_id] = stats
        return stats

    @staticmethod
    def _merge(state: dict, rec: dict) -> dict:
        """(thread) Put ``rec`` in ``state``, merged with an existing record of the same image; its
        tags move off any other image."""
        images = state["images"]
        old = images.get(rec["id"])
        if old is not None:
            known = {m["digest"] for m in old["manifests"]}
            old["manifests"] += [m for m in rec["manifests"] if m["digest"] not in known]
            old["repo_tags"] += [t for t in rec["repo_tags"] if t not in old["repo_tags"]]
            old["repo_digests"] += [d for d in rec["repo_digests"] if d not in old["repo_digests"]]
            old["layers"] = rec["layers"]
            rec = old
        for other in images.values():
            if other["id"] != rec["id"]:
                other["repo_tags"] = [t for t in other["repo_tags"] if t not in rec["repo_tags"]]
        images[rec["id"]] = rec
        return rec

    async def _abandon(self, pins: _Pins) -> None:
        """After a failure: let shared work this operation waited on settle, then drop what it added."""
        if pins.tasks:
            await asyncio.shield(asyncio.gather(*pins.tasks, return_exceptions=True))
        candidates = set(pins.held)
        pins.release()
        await asyncio.shield(self._collect(candidates))

    async def _collect(self, candidates: set[str]) -> None:
        """Delete the blobs and layers among ``candidates`` that no record and no operation holds."""
        async with self._gc_lock:
            self._reload_if_changed()
            used: set[str] = set()
            for rec in self._state["images"].values():
                used |= _record_blobs(rec) | _record_layers(rec)
            doomed = [c for c in candidates if c not in used and c not in self._pins]
            if not doomed:
                return

            def delete():
                for key in doomed:
                    hex_ = key.split(":", 1)[1]
                    shutil.rmtree(self.layers_dir / hex_, ignore_errors=True)
                    self.content.delete(key)

            await asyncio.to_thread(delete)
            for key in doomed:
                self._layer_stats.pop(key, None)
                self._configs.pop(key, None)

    # -- removal and import --------------------------------------------------------------------

    async def remove(self, ref_or_id: str) -> None:
        """Remove the image (all its tags) and whatever of it no other image uses.

        Raises ``ImageNotFound`` if there is no such image. Callers check that no container uses it.
        """
        self._reload_if_changed()
        rec = self._find(ref_or_id)
        if rec is None:
            raise ImageNotFound(f"image {ref_or_id!r} not found")
        image_id = rec["id"]
        removed = await self._update(lambda state: state["images"].pop(image_id, None))
        if removed is None:
            raise ImageNotFound(f"image {ref_or_id!r} not found")
        await self._collect(_record_blobs(removed) | _record_layers(removed))
        log.info("image removed", id=image_id, tags=removed["repo_tags"])

    async def import_archive(self, path: Path | str, name: str | None = None) -> list[Image]:
        """Import an OCI layout (directory or tar) or a docker-archive tar; returns its images.

        ``name`` names images the archive tags with a bare tag only (see ``archive.load``).
        """
        await self._ready()
        if name is not None:
            try:
                name = reference.parse(name).name
            except InvalidReference as e:
                raise InvalidReference(f"import name: {e}") from e
        pins = _Pins(self._pins)
        written: list[str] = []
        try:
            entries = await asyncio.to_thread(archive.load, Path(path), self.content, name, written)
            for d in written:
                pins.add(d)
            images = []
            for entry in entries:
                top = await self._local_manifest(entry.top_digest, pins)
                if top is None:
                    raise PullError(f"archive manifest {entry.top_digest} is missing")
                manifest = await self._platform_manifest(None, top, pins)
                rec = await self._materialize(manifest, top, pins, None)
                rec["repo_tags"] = list(entry.names)
                rec["repo_digests"] = [reference.with_digest(n.rsplit(":", 1)[0], top.digest)
                                       for n in entry.names] if entry.registry_digest else []
                if not entry.registry_digest:
                    rec["manifests"] = [{"digest": top.digest, "size": len(top.body)}]
                stored = await self._update(lambda state, rec=rec: self._merge(state, rec))
                images.append(self._image(stored))
            pins.release()
            await self._collect(set(written))
            return images
        except BaseException:
            for d in written:
                pins.add(d)
            await self._abandon(pins)
            raise
        finally:
            pins.release()

