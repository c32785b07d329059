"""A client of the OCI distribution API: manifests, blobs, and the registry auth flows.

One ``RegistryClient`` serves one repository for one pull: it holds that pull's credentials and
the bearer token it earned. Manifests are asked for with every Docker and OCI manifest and
index media type; indexes are resolved to ``linux/<host arch>``. Blobs stream to a temporary file
of the content store while they are hashed (in a thread), and only a blob of the promised digest
and size is kept. Registries named insecure, and loopback hosts, are spoken to over plain http.
Authentication follows the ``WWW-Authenticate`` challenge: a bearer token from the realm (with
basic credentials, an identity token, or anonymously) or basic auth.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import ipaddress
import platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
import orjson

from runtime.images.errors import PullError
from runtime.images.reference import DEFAULT_DOMAIN, Reference
from runtime.images.store import ContentStore, check_digest

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                     "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
MANIFEST_TYPES = (MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
MANIFEST_MAX = 8 << 20
WRITE_CHUNK = 1 << 20
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


@dataclass
class RegistryAuth:
    """Credentials for a pull, as CRI's AuthConfig carries them."""

    username: str = ""
    password: str = ""
    auth: str = ""                 # base64("username:password")
    server_address: str = ""
    identity_token: str = ""       # an OAuth2 refresh token for the realm
    registry_token: str = ""       # a bearer token to send as is

    def basic(self) -> tuple[str, str] | None:
        if self.username or self.password:
            return self.username, self.password
        if self.auth:
            try:
                user, _, password = base64.b64decode(self.auth).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as e:
                raise PullError("auth: malformed base64 credentials") from e
            return user, password
        return None


def host_platform() -> tuple[str, str, str]:
    """(os, architecture, variant) of this node in OCI terms."""
    machine = platform.machine().lower()
    arch, variant = {
        "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", ""),
    }.get(machine, (machine, ""))
    return "linux", arch, variant


def select_platform(index: dict, want: tuple[str, str, str] | None = None) -> dict:
    """The descriptor in an index for this platform (exact variant preferred, then any variant)."""
    os_, arch, variant = want or host_platform()
    best, best_rank = None, -1
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        if desc.get("mediaType") not in (*MANIFEST_TYPES, None):
            continue
        v = p.get("variant", "")
        rank = 2 if v == variant else 1 if not v or not variant else 0
        if rank > best_rank:
            best, best_rank = desc, rank
    if best is None:
        raise PullError(f"no image for platform {os_}/{arch}{'/' + variant if variant else ''} in the index",
                        code="PLATFORM_UNAVAILABLE")
    return best


def is_loopback(host: str) -> bool:
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.index("]")]
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in _PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


def _basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _registry_error(status: int, body: bytes, what: str) -> PullError:
    code, message = "", ""
    try:
        errors = orjson.loads(body).get("errors") or []
        if errors:
            code = str(errors[0].get("code", ""))
            message = str(errors[0].get("message", ""))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        pass
    reason = f"{code}: {message}" if code else (message or body[:200].decode("utf-8", "replace").strip())
    return PullError(f"{what}: registry answered {status}{' ' + reason if reason else ''}", status=status, code=code)


@dataclass
class Manifest:
    """A manifest or index as the registry served it."""

    digest: str
    media_type: str
    body: bytes

    @property
    def json(self) -> dict:
        return orjson.loads(self.body)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def manifest_media_type(body: bytes, content_type: str) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise PullError("manifest is not JSON") from e
    if not isinstance(doc, dict):
        raise PullError("manifest is not a JSON object")
    mt = doc.get("mediaType") or content_type.split(";")[0].strip()
    if mt in MT_DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise PullError("Docker schema 1 manifests are not supported", code="MANIFEST_INVALID")
    if mt not in (*INDEX_TYPES, *MANIFEST_TYPES):
        # OCI allows an absent mediaType: tell an index from a manifest by its fields.
        mt = MT_OCI_INDEX if "manifests" in doc else MT_OCI_MANIFEST if "config" in doc else mt
    if mt not in (*INDEX_TYPES, *MANIFEST_TYPES):
        raise PullError(f"unsupported manifest media type {mt!r}", code="MANIFEST_INVALID")
    return mt


class RegistryClient:
    def __init__(self, session: aiohttp.ClientSession, ref: Reference, auth: RegistryAuth | None = None,
                 insecure_registries: Sequence[str] = (), on_blob_get: Callable[[str], None] | None = None):
        self.session = session
        self.ref = ref
        self.auth = auth or RegistryAuth()
        host = DOCKER_HUB_ENDPOINT if ref.domain == DEFAULT_DOMAIN else ref.domain
        insecure = ref.domain in set(insecure_registries) or is_loopback(ref.domain)
        self.base = f"{'http' if insecure else 'https'}://{host}/v2/{ref.path}"
        self.on_blob_get = on_blob_get
        self._authorization = f"Bearer {self.auth.registry_token}" if self.auth.registry_token else ""
        self._auth_lock = asyncio.Lock()

    # -- requests and auth ------------------------------------------------------------------

    async def _request(self, method: str, url: str, what: str, headers: dict | None = None,
                       ok: Sequence[int] = (200,)) -> aiohttp.ClientResponse:
        """Send, answering at most one auth challenge; raise ``PullError`` unless the status is ``ok``."""
        sent_with = None
        for _ in range(3):
            h = dict(headers or {})
            authorization = self._authorization
            if authorization:
                h["Authorization"] = authorization
            try:
                resp = await self.session.request(method, url, headers=h)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                raise PullError(f"{what}: {type(e).__name__}: {e}") from e
            if resp.status == 401 and sent_with != authorization:
                challenge = resp.headers.get("WWW-Authenticate", "")
                body = await resp.read()
                resp.release()
                sent_with = authorization
                async with self._auth_lock:
                    if self._authorization == authorization:   # not refreshed meanwhile by another request
                        await self._answer(challenge, status=401, body=body, what=what)
                continue
            if resp.status not in ok:
                body = await resp.read() if method != "HEAD" else b""
                resp.release()
                raise _registry_error(resp.status, body, what)
            return resp
        raise PullError(f"{what}: unauthorized", status=401, code="UNAUTHORIZED")

    async def _answer(self, challenge: str, *, status: int, body: bytes, what: str) -> None:
        scheme, params = parse_challenge(challenge) if challenge else ("", {})
        creds = self.auth.basic()
        if scheme == "basic":
            if not creds:
                raise _registry_error(status, body, f"{what} (no credentials for basic auth)")
            if self._authorization.startswith("Basic "):
                raise _registry_error(status, body, f"{what} (credentials rejected)")
            self._authorization = _basic_header(*creds)
        elif scheme == "bearer":
            if self._authorization.startswith("Bearer ") and self.auth.registry_token:
                raise _registry_error(status, body, f"{what} (registry token rejected)")
            self._authorization = f"Bearer {await self._fetch_token(params)}"
        else:
            raise _registry_error(status, body, f"{what} (unsupported auth challenge {challenge!r})")

    async def _fetch_token(self, params: dict[str, str]) -> str:
        realm = params.get("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise PullError(f"auth: bearer challenge without a usable realm ({realm!r})", status=401,
                            code="UNAUTHORIZED")
        scope = params.get("scope") or f"repository:{self.ref.path}:pull"
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        creds = self.auth.basic()
        try:
            if self.auth.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": self.auth.identity_token,
                        "client_id": "navarch", **query}
                resp = await self.session.post(realm, data=form)
            else:
                headers = {"Authorization": _basic_header(*creds)} if creds else {}
                resp = await self.session.get(realm, params=query, headers=headers)
            async with resp:
                body = await resp.read()
                if resp.status != 200:
                    raise _registry_error(resp.status, body, "auth: token request")
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise PullError(f"auth: token request to {realm}: {type(e).__name__}: {e}") from e
        try:
            doc = orjson.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (orjson.JSONDecodeError, AttributeError) as e:
            raise PullError("auth: token response is not JSON") from e
        if not token or not isinstance(token, str):
            raise PullError("auth: token response carries no token", status=401, code="UNAUTHORIZED")
        return token

    # -- manifests -----------------------------------------------------------------------------

    async def resolve(self, obj: str) -> str | None:
        """HEAD a manifest by tag or digest; its digest, or None when the registry does not say."""
        resp = await self._request("HEAD", f"{self.base}/manifests/{obj}", f"manifest {self.ref.name}:{obj}",
                                   headers={"Accept": ACCEPT})
        resp.release()
        digest = resp.headers.get("Docker-Content-Digest", "")
        try:
            return check_digest(digest)
        except PullError:
            return None

    async def get_manifest(self, obj: str) -> Manifest:
        """GET a manifest or index by tag or digest; when asked by digest the content must match it."""
        what = f"manifest {self.ref.name}{'@' if obj.startswith('sha256:') else ':'}{obj}"
        resp = await self._request("GET", f"{self.base}/manifests/{obj}", what, headers={"Accept": ACCEPT})
        try:
            if (resp.content_length or 0) > MANIFEST_MAX:
                raise PullError(f"{what}: larger than {MANIFEST_MAX} bytes")
            body = await resp.content.read(MANIFEST_MAX + 1)
            if len(body) > MANIFEST_MAX:
                raise PullError(f"{what}: larger than {MANIFEST_MAX} bytes")
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise PullError(f"{what}: {type(e).__name__}: {e}") from e
        finally:
            resp.release()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if obj.startswith("sha256:") and digest != obj:
            raise PullError(f"{what}: content has digest {digest}", code="DIGEST_INVALID")
        return Manifest(digest, manifest_media_type(body, resp.headers.get("Content-Type", "")), body)

    # -- blobs ---------------------------------------------------------------------------------

    async def get_blob_bytes(self, digest: str, size: int, limit: int = MANIFEST_MAX) -> bytes:
        """A small blob (a config) into memory, verified."""
        check_digest(digest)
        if size > limit:
            raise PullError(f"blob {digest}: {size} bytes is more than {limit}")
        if self.on_blob_get:
            self.on_blob_get(digest)
        what = f"blob {self.ref.name}@{digest}"
        resp = await self._request("GET", f"{self.base}/blobs/{digest}", what)
        try:
            body = await resp.content.read(limit + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise PullError(f"{what}: {type(e).__name__}: {e}") from e
        finally:
            resp.release()
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest or (size >= 0 and len(body) != size):
            raise PullError(f"{what}: content has digest {actual} and size {len(body)}, expected size {size}",
                            code="DIGEST_INVALID")
        return body

    async def download_blob(self, digest: str, size: int, store: ContentStore, *,
                            tee: Callable[[bytes], None] | None = None,
                            executor: concurrent.futures.Executor | None = None) -> None:
        """Stream a blob into the content store; it appears there only if digest and size match.

        Writing and hashing run in ``executor`` (threads), one chunk behind the network so both
        proceed at once. ``tee`` also gets every chunk, in that thread (it may block to slow the
        download down).
        """
        check_digest(digest)
        if self.on_blob_get:
            self.on_blob_get(digest)
        loop = asyncio.get_running_loop()
        what = f"blob {self.ref.name}@{digest}"
        resp = await self._request("GET", f"{self.base}/blobs/{digest}", what)
        writer = await loop.run_in_executor(executor, store.writer, digest, size)

        def put(data: bytes) -> None:
            writer.write(data)
            if tee is not None:
                tee(data)

        pending: asyncio.Future | None = None
        try:
            parts: list[bytes] = []
            buffered = 0
            try:
                async for chunk in resp.content.iter_any():
                    parts.append(chunk)
                    buffered += len(chunk)
                    if buffered >= WRITE_CHUNK:
                        if pending is not None:
                            await pending
                        data, parts, buffered = b"".join(parts), [], 0
                        pending = loop.run_in_executor(executor, put, data)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                raise PullError(f"{what}: {type(e).__name__}: {e}") from e
            if pending is not None:
                await pending
                pending = None
            if parts:
                await loop.run_in_executor(executor, put, b"".join(parts))
            await loop.run_in_executor(executor, writer.commit)
        except BaseException:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            await loop.run_in_executor(executor, writer.abort)
            raise
        finally:
            resp.release()
