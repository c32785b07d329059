"""The one list of resources the cluster serves, and how to look them up.

Every other part (REST routes, discovery, OpenAPI, storage keys, clients) derives from
``RESOURCES``; adding a kind means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str                      # "status", "scale", "binding", "log", "exec", ...
    kind: str                      # response kind, e.g. "Scale"
    group: str = ""                # response kind's group ("autoscaling" for scale)
    version: str = "v1"
    verbs: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceInfo:
    group: str                     # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Whether spec/status are split: writes to the main resource ignore status and writes to
    # /status ignore everything else, as in Kubernetes.
    has_status: bool = False
    singular: str = field(default="")

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def storage_group(self) -> str:
        return self.group or "core"

    @property
    def url_prefix(self) -> str:
        """The group-version root: ``/api/v1`` or ``/apis/<group>/<version>``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def storage_prefix(self, namespace: str | None = None) -> str:
        """Key prefix of every object of this resource (in one namespace if given), ending in '/'."""
        base = f"/registry/{self.storage_group}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def storage_key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.storage_group}/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.storage_group}/{self.plural}/{name}"

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


STATUS = Subresource("status", kind="")  # kind filled in as the parent's kind at lookup
SCALE = Subresource("scale", kind="Scale", group="autoscaling")

RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1
    ResourceInfo("", "v1", "Namespace", "namespaces", False, ("ns",), (), (STATUS,), has_status=True,
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    ResourceInfo("", "v1", "Pod", "pods", True, ("po",), ("all",),
                 (STATUS, Subresource("binding", "Binding", verbs=("create",)),
                  Subresource("log", "Pod", verbs=("get",)),
                  Subresource("exec", "PodExecOptions", verbs=("create", "get")),
                  Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
                  Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
                  Subresource("eviction", "Eviction", group="policy", verbs=("create",))),
                 has_status=True),
    ResourceInfo("", "v1", "Node", "nodes", False, ("no",), (), (STATUS,), has_status=True),
    ResourceInfo("", "v1", "Service", "services", True, ("svc",), ("all",), (STATUS,), has_status=True),
    ResourceInfo("", "v1", "Endpoints", "endpoints", True, ("ep",), (), singular="endpoints"),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceInfo("", "v1", "Secret", "secrets", True),
    ResourceInfo("", "v1", "Event", "events", True, ("ev",)),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    # apps/v1
    ResourceInfo("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",),
                 (STATUS, SCALE), has_status=True),
    ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",),
                 (STATUS, SCALE), has_status=True),
    ResourceInfo("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), (STATUS,),
                 has_status=True),
    ResourceInfo("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",),
                 (STATUS, SCALE), has_status=True),
    ResourceInfo("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    # batch/v1
    ResourceInfo("batch", "v1", "Job", "jobs", True, (), ("all",), (STATUS,), has_status=True),
    ResourceInfo("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",), (STATUS,),
                 has_status=True),
    # coordination.k8s.io/v1
    ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", True),
    # discovery.k8s.io/v1
    ResourceInfo("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # scheduling.k8s.io/v1
    ResourceInfo("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
)

_BY_PLURAL: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KIND: dict[tuple[str, str], ResourceInfo] = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """The resource served at ``/api[s]/<group>/<version>/<plural>``, or None."""
    return _BY_PLURAL.get((group, version, plural))


def for_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource of an object with this apiVersion and kind, or None."""
    return _BY_KIND.get((api_version, kind))


def resolve(name: str) -> ResourceInfo | None:
    """Resolve what a user types (``po``, ``pods``, ``pod``, ``Deployment``, ``deployments.apps``)."""
    name = name.strip()
    group = None
    if "." in name:
        name, group = name.split(".", 1)
    lowered = name.lower()
    for r in RESOURCES:
        if group is not None and r.group != group:
            continue
        if lowered in (r.plural, r.singular_name, r.kind.lower()) or lowered in r.short_names:
            return r
    return None


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs in registry order, core first."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen
