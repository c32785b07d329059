"""Discovery documents: ``/version``, aggregated discovery (``/api``, ``/apis``) and legacy discovery.

Every document derives from ``api.registry.RESOURCES`` and never changes while the process runs, so
each is built once and cached. Functions return JSON-ready dicts; the HTTP layer serializes them
and must send ``AGGREGATED_CONTENT_TYPE`` with the aggregated form, since client-go decides how
to parse the body from that header alone.
"""

from __future__ import annotations

import copy
import functools
import platform
import sys
from typing import Any

from api import errors
from api.registry import RESOURCES, ResourceInfo, Subresource, group_versions

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_VERSION = "v2"
AGGREGATED_KIND = "APIGroupDiscoveryList"
AGGREGATED_CONTENT_TYPE = (
    f"application/json;g={AGGREGATED_GROUP};v={AGGREGATED_VERSION};as={AGGREGATED_KIND}"
)
JSON_CONTENT_TYPE = "application/json"

# kubectl's dispatcher picks the client binary whose minor version matches this; 1.32 is the
# version whose wire behaviour the server implements.
_MAJOR, _MINOR, _PATCH = "1", "32", "0"
_BUILD_DATE = "2024-12-11T00:00:00Z"

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def version_info() -> dict[str, Any]:
    """The ``version.Info`` document served at ``/version``.

    ``goVersion`` and ``compiler`` are required by typed clients; they name the Python runtime.
    """
    machine = platform.machine().lower()
    return {
        "major": _MAJOR,
        "minor": _MINOR,
        "gitVersion": f"v{_MAJOR}.{_MINOR}.{_PATCH}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": _BUILD_DATE,
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
        "compiler": sys.implementation.name,
        "platform": f"{sys.platform}/{_GOARCH.get(machine, machine)}",
    }


# ---------------------------------------------------------------------------------------------
# Aggregated discovery (apidiscovery.k8s.io/v2)


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _sub_kind(res: ResourceInfo, sub: Subresource) -> tuple[str, str, str]:
    """(group, version, kind) a subresource answers with; ``status`` answers with the parent kind."""
    if not sub.kind:
        return res.group, res.version, res.kind
    return sub.group, sub.version, sub.kind


def _aggregated_resource(res: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": _gvk(res.group, res.version, res.kind),
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular_name,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        entry["shortNames"] = list(res.short_names)
    if res.categories:
        entry["categories"] = list(res.categories)
    subs = []
    for sub in res.subresources:
        g, v, k = _sub_kind(res, sub)
        subs.append({"subresource": sub.name, "responseKind": _gvk(g, v, k), "verbs": list(sub.verbs)})
    if subs:
        entry["subresources"] = subs
    return entry


def _versions_by_group() -> dict[str, list[str]]:
    """Each group's versions, preferred (first registered) first; core group under ""."""
    out: dict[str, list[str]] = {}
    for group, version in group_versions():
        out.setdefault(group, []).append(version)
    return out


def _resources_in(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


@functools.cache
def _aggregated(core: bool) -> dict[str, Any]:
    items = []
    for group, versions in _versions_by_group().items():
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {"version": v, "freshness": "Current",
                 "resources": [_aggregated_resource(r) for r in _resources_in(group, v)]}
                for v in versions
            ],
        })
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{AGGREGATED_GROUP}/{AGGREGATED_VERSION}",
        "metadata": {},
        "items": items,
    }


def aggregated(core: bool) -> dict[str, Any]:
    """The ``APIGroupDiscoveryList`` for ``/api`` (``core=True``) or ``/apis`` (``core=False``).

    Returns a private copy: callers may mutate it.
    """
    return copy.deepcopy(_aggregated(core))


def _media_types(accept: str) -> list[tuple[str, dict[str, str], float]]:
    """The Accept header's media ranges in preference order (by q, stable), lower-cased."""
    ranges = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        mime = pieces[0].lower()
        if not mime:
            continue
        params: dict[str, str] = {}
        for p in pieces[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip().lower()] = v.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        ranges.append((mime, params, q))
    return sorted((r for r in ranges if r[2] > 0), key=lambda r: -r[2])


def wants_aggregated(accept_header: str | None) -> bool:
    """Whether the client prefers aggregated discovery v2 over the legacy documents.

    The first acceptable range decides: an aggregated v2 range before any plain JSON one.
    """
    for mime, params, _q in _media_types(accept_header or ""):
        if params.get("g") == AGGREGATED_GROUP:
            if (mime == "application/json" and params.get("as") == AGGREGATED_KIND
                    and params.get("v") == AGGREGATED_VERSION):
                return True
            continue  # another aggregated version, or protobuf: not served, look further
        if mime in ("application/json", "application/*", "*/*") and not params.get("as"):
            return False
    return False


# ---------------------------------------------------------------------------------------------
# Legacy discovery


def api_versions(server_address: str = "") -> dict[str, Any]:
    """The ``APIVersions`` document served at ``/api`` to clients not asking for aggregation."""
    # The field is required by typed clients, so it is present (empty) even without an address.
    cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}] if server_address else []
    return {"kind": "APIVersions", "versions": list(_versions_by_group().get("", [])),
            "serverAddressByClientCIDRs": cidrs}


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


@functools.cache
def _api_group_list() -> dict[str, Any]:
    groups = [_group_doc(g, vs) for g, vs in _versions_by_group().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_list() -> dict[str, Any]:
    """The ``APIGroupList`` served at ``/apis`` (named groups only, as in Kubernetes)."""
    return copy.deepcopy(_api_group_list())


def api_group(group: str) -> dict[str, Any]:
    """The ``APIGroup`` served at ``/apis/<group>``; NotFound for a group not served."""
    versions = _versions_by_group().get(group) if group else None
    if not versions:
        raise errors.NotFound("the server could not find the requested resource")
    return {"kind": "APIGroup", "apiVersion": "v1", **copy.deepcopy(_group_doc(group, versions))}


def _legacy_entries(res: ResourceInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular_name,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    entries = [main]
    for sub in res.subresources:
        g, v, k = _sub_kind(res, sub)
        entry: dict[str, Any] = {"name": f"{res.plural}/{sub.name}", "singularName": "",
                                 "namespaced": res.namespaced, "kind": k, "verbs": list(sub.verbs)}
        if (g, v) != (res.group, res.version):
            entry["group"], entry["version"] = g, v
        entries.append(entry)
    return entries


@functools.cache
def _api_resource_list(group: str, version: str) -> dict[str, Any]:
    resources = _resources_in(group, version)
    if not resources:
        raise errors.NotFound("the server could not find the requested resource")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [e for r in resources for e in _legacy_entries(r)],
    }


def api_resource_list(group: str, version: str) -> dict[str, Any]:
    """The ``APIResourceList`` served at ``/api/v1`` or ``/apis/<group>/<version>``, subresources
    included as ``<plural>/<sub>`` entries. NotFound for a group-version not served."""
    return copy.deepcopy(_api_resource_list(group, version))
