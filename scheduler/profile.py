"""Scheduler configuration: profiles (which plugins run at each extension point, score weights,
plugin arguments) parsed from a KubeSchedulerConfiguration-like YAML file.

A file looks like::

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    percentageOfNodesToScore: 0            # 0 or absent: adaptive, as kube-scheduler
    profiles:
    - schedulerName: default-scheduler
      plugins:
        multiPoint: {enabled: [{name: ...}], disabled: [{name: "*"}]}
        filter: {enabled: [{name: NodeName}], disabled: [{name: NodePorts}]}
        score: {enabled: [{name: NodeResourcesFit, weight: 5}]}
      pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated}}

Every profile starts from the default plugin set (``multiPoint``: a plugin runs at every point it
implements). Per point, ``disabled`` removes plugins (``*``: all defaults of that point) and
``enabled`` adds them in order (an already-enabled plugin keeps its place and takes the new
weight). Bad input raises ``ConfigError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_SCHEDULER_NAME = "default-scheduler"

# Extension point (config name) -> the method a plugin implements for it.
EXTENSION_POINTS: dict[str, str] = {
    "queueSort": "less",
    "preFilter": "pre_filter",
    "filter": "filter",
    "postFilter": "post_filter",
    "preScore": "pre_score",
    "score": "score",
    "reserve": "reserve",
    "permit": "permit",
    "preBind": "pre_bind",
    "bind": "bind",
    "postBind": "post_bind",
}

# kube-scheduler's default multi-point plugins (minus volume and image plugins), in its order,
# with its default score weights.
DEFAULT_PLUGINS: list[tuple[str, int]] = [
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("DefaultBinder", 0),
]


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


@dataclass
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    plugins: dict[str, list[str]] = field(default_factory=dict)   # point -> ordered plugin names
    weights: dict[str, int] = field(default_factory=dict)         # score plugin -> weight
    plugin_args: dict[str, dict] = field(default_factory=dict)    # plugin -> args
    percentage_of_nodes_to_score: int | None = None

    def enabled(self, point: str) -> list[str]:
        return self.plugins.get(point, [])

    def all_plugins(self) -> list[str]:
        seen: dict[str, None] = {}
        for names in self.plugins.values():
            for n in names:
                seen.setdefault(n, None)
        return list(seen)


@dataclass
class SchedulerConfig:
    profiles: list[Profile] = field(default_factory=list)
    percentage_of_nodes_to_score: int | None = None
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0

    def profile(self, scheduler_name: str) -> Profile | None:
        for p in self.profiles:
            if p.scheduler_name == scheduler_name:
                return p
        return None


def _registry() -> Mapping[str, type]:
    from scheduler.plugins.registry import REGISTRY
    return REGISTRY


def _implements(cls: type, point: str) -> bool:
    return callable(getattr(cls, EXTENSION_POINTS[point], None))


def _plugin_list(value: Any, path: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{path}: must be a list of {{name, weight}}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{path}[{i}].name: required")
        w = item.get("weight")
        if w is not None and (not isinstance(w, int) or isinstance(w, bool) or w < 0 or w > 100):
            raise ConfigError(f"{path}[{i}].weight: must be an integer between 0 and 100")
        out.append(dict(item))
    return out


def _percentage(v: Any, path: str) -> int | None:
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
        raise ConfigError(f"{path}: must be an integer between 0 and 100")
    return v


def build_profile(spec: Mapping[str, Any] | None = None, path: str = "profiles[0]") -> Profile:
    """A Profile from one ``profiles[]`` entry (``None``: the default profile)."""
    spec = spec or {}
    registry = _registry()
    name = spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME
    if not isinstance(name, str):
        raise ConfigError(f"{path}.schedulerName: must be a string")
    plugins_spec = spec.get("plugins") or {}
    if not isinstance(plugins_spec, Mapping):
        raise ConfigError(f"{path}.plugins: must be an object")
    for point in plugins_spec:
        if point != "multiPoint" and point not in EXTENSION_POINTS:
            raise ConfigError(f"{path}.plugins.{point}: unknown extension point")

    def check(entry: dict, p: str) -> type:
        cls = registry.get(entry["name"])
        if cls is None:
            raise ConfigError(f"{p}.name: unknown plugin {entry['name']!r}")
        return cls

    # Multi-point set: defaults, minus disabled, plus enabled.
    multi = plugins_spec.get("multiPoint") or {}
    mp_path = f"{path}.plugins.multiPoint"
    mp_disabled = {e["name"] for e in _plugin_list(multi.get("disabled"), mp_path + ".disabled")}
    weights: dict[str, int] = {}
    multi_names: list[str] = []
    if "*" not in mp_disabled:
        for n, w in DEFAULT_PLUGINS:
            if n not in mp_disabled:
                multi_names.append(n)
                if w:
                    weights[n] = w
    for i, e in enumerate(_plugin_list(multi.get("enabled"), mp_path + ".enabled")):
        check(e, f"{mp_path}.enabled[{i}]")
        if e["name"] not in multi_names:
            multi_names.append(e["name"])
        if e.get("weight"):
            weights[e["name"]] = e["weight"]

    plugins: dict[str, list[str]] = {}
    for point in EXTENSION_POINTS:
        names = [n for n in multi_names if _implements(registry[n], point)]
        pt = plugins_spec.get(point) or {}
        p_path = f"{path}.plugins.{point}"
        disabled = {e["name"] for e in _plugin_list(pt.get("disabled"), p_path + ".disabled")}
        if "*" in disabled:
            names = []
        else:
            names = [n for n in names if n not in disabled]
        for i, e in enumerate(_plugin_list(pt.get("enabled"), p_path + ".enabled")):
            cls = check(e, f"{p_path}.enabled[{i}]")
            if not _implements(cls, point):
                raise ConfigError(f"{p_path}.enabled[{i}]: plugin {e['name']!r} does not implement {point}")
            if e["name"] not in names:
                names.append(e["name"])
            if point == "score" and e.get("weight"):
                weights[e["name"]] = e["weight"]
        plugins[point] = names
    if not plugins["bind"]:
        raise ConfigError(f"{path}.plugins.bind: at least one bind plugin is needed")
    if len(plugins["queueSort"]) > 1:
        raise ConfigError(f"{path}.plugins.queueSort: only one queue sort plugin can be enabled")

    args: dict[str, dict] = {}
    for i, pc in enumerate(spec.get("pluginConfig") or ()):
        if not isinstance(pc, Mapping) or not isinstance(pc.get("name"), str):
            raise ConfigError(f"{path}.pluginConfig[{i}].name: required")
        if pc["name"] not in registry:
            raise ConfigError(f"{path}.pluginConfig[{i}].name: unknown plugin {pc['name']!r}")
        a = pc.get("args") or {}
        if not isinstance(a, Mapping):
            raise ConfigError(f"{path}.pluginConfig[{i}].args: must be an object")
        if pc["name"] in args:
            raise ConfigError(f"{path}.pluginConfig[{i}]: repeated config for plugin {pc['name']!r}")
        args[pc["name"]] = dict(a)
    score_weights = {n: weights.get(n, 1) for n in plugins["score"]}
    prof = Profile(name, plugins, score_weights, args,
                   _percentage(spec.get("percentageOfNodesToScore"), f"{path}.percentageOfNodesToScore"))
    # Arguments are checked by building each plugin once (a bad arg raises ConfigError).
    for n in prof.all_plugins():
        validate = getattr(registry[n], "validate_args", None)
        if validate is not None:
            try:
                validate(args.get(n, {}))
            except ConfigError as e:
                raise ConfigError(f"{path}.pluginConfig[{n}].args: {e}") from None
    return prof


def default_profile(scheduler_name: str = DEFAULT_SCHEDULER_NAME) -> Profile:
    return build_profile({"schedulerName": scheduler_name})


def parse_config(doc: Mapping[str, Any] | None) -> SchedulerConfig:
    """A SchedulerConfig from the decoded YAML document (``None`` or ``{}``: defaults)."""
    doc = doc or {}
    if not isinstance(doc, Mapping):
        raise ConfigError("configuration: must be an object")
    kind = doc.get("kind")
    if kind is not None and kind != "KubeSchedulerConfiguration":
        raise ConfigError(f"kind: expected KubeSchedulerConfiguration, got {kind!r}")
    profiles_spec = doc.get("profiles")
    if profiles_spec is None:
        profiles_spec = [{}]
    if not isinstance(profiles_spec, list) or not profiles_spec:
        raise ConfigError("profiles: must be a non-empty list")
    profiles = []
    seen: set[str] = set()
    for i, ps in enumerate(profiles_spec):
        if not isinstance(ps, Mapping):
            raise ConfigError(f"profiles[{i}]: must be an object")
        prof = build_profile(ps, f"profiles[{i}]")
        if prof.scheduler_name in seen:
            raise ConfigError(f"profiles[{i}].schedulerName: duplicate {prof.scheduler_name!r}")
        seen.add(prof.scheduler_name)
        profiles.append(prof)
    cfg = SchedulerConfig(profiles, _percentage(doc.get("percentageOfNodesToScore"), "percentageOfNodesToScore"))
    for key, attr in (("podInitialBackoffSeconds", "pod_initial_backoff_seconds"),
                      ("podMaxBackoffSeconds", "pod_max_backoff_seconds")):
        v = doc.get(key)
        if v is not None:
            if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{key}: must be a positive number")
            setattr(cfg, attr, float(v))
    return cfg


def load_config(path: str | None) -> SchedulerConfig:
    """Read and parse a config file (blocking file I/O: call it before the loop starts, or in a
    thread). ``None``: the defaults."""
    if path is None:
        return parse_config(None)
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return parse_config(doc)
