"""Settings of a simulator process, the parsing of their flag forms, and the address plan.

Node ``i`` (its index, from ``start_index``) is named ``<name_prefix><i>``; its InternalIP is the
``i+1``-th address of ``node_ip_range`` and its pod range the ``i``-th block of size
``node_cidr_mask_size`` carved from ``pod_cidr``, unless the Node's ``spec.podCIDR`` (set by the
controller manager's node IPAM) says otherwise. The index is derived from the name, so a restarted
simulator gives every node the same addresses again.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from api import quantity

ANNOTATION_EXIT_AFTER = "sim.navarch.io/exit-after"
ANNOTATION_EXIT_CODE = "sim.navarch.io/exit-code"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


class ConfigError(ValueError):
    """A setting that cannot work, with the flag it came from in the message."""


@dataclass
class SimConfig:
    count: int = 1
    name_prefix: str = "sim-"
    start_index: int = 0
    cpu: str = "32"
    memory: str = "256Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    arch: str = "amd64"
    pod_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    node_ip_range: str = "10.250.0.0/16"
    kubelet_version: str = "v1.32.0-sim"
    # Seconds.
    pod_startup_delay: float = 0.0
    termination_delay: float = 0.0
    lease_duration: int = 40
    lease_renew_interval: float = 10.0
    # A node agent whose status has not changed reports it every 5 minutes (the kubelet's
    # nodeStatusReportFrequency); its Lease is the heartbeat.
    node_status_update_frequency: float = 300.0
    restart_backoff: float = 10.0
    restart_backoff_max: float = 300.0
    # Writes to the API server in flight at once, all kinds together.
    max_inflight: int = 32
    cleanup: bool = False
    # Record the node agent's pod Events (Started, BackOff, Killing, ...).
    events: bool = False

    def __post_init__(self) -> None:
        self.check()

    # -- validation ----------------------------------------------------------------------

    def check(self) -> None:
        if self.count < 0:
            raise ConfigError("--count must not be negative")
        if self.start_index < 0:
            raise ConfigError("--start-index must not be negative")
        for flag, value in (("--cpu", self.cpu), ("--memory", self.memory),
                            ("--ephemeral-storage", self.ephemeral_storage)):
            if not quantity.is_valid(value):
                raise ConfigError(f"{flag}: {value!r} is not a quantity")
        if self.pods < 0:
            raise ConfigError("--pods must not be negative")
        if self.max_inflight < 1:
            raise ConfigError("--max-inflight must be at least 1")
        if not self.lease_duration > self.lease_renew_interval > 0:
            raise ConfigError("need --lease-duration > --lease-renew-interval > 0")
        if self.node_status_update_frequency <= 0:
            raise ConfigError("--node-status-update-frequency must be positive")
        if self.restart_backoff < 0 or self.restart_backoff_max < self.restart_backoff:
            raise ConfigError("need 0 <= --restart-backoff <= --restart-backoff-max")
        try:
            pods = ipaddress.ip_network(self.pod_cidr)
        except ValueError as e:
            raise ConfigError(f"--pod-cidr: {e}") from None
        try:
            nodes = ipaddress.ip_network(self.node_ip_range)
        except ValueError as e:
            raise ConfigError(f"--node-ip-range: {e}") from None
        if not pods.prefixlen <= self.node_cidr_mask_size <= pods.max_prefixlen - 2:
            raise ConfigError(f"--node-cidr-mask-size {self.node_cidr_mask_size} does not fit in "
                              f"--pod-cidr {self.pod_cidr}")
        last = self.start_index + self.count
        blocks = 2 ** (self.node_cidr_mask_size - pods.prefixlen)
        if self.count and last > blocks:
            raise ConfigError(f"--pod-cidr {self.pod_cidr} holds {blocks} node ranges of "
                              f"/{self.node_cidr_mask_size}, too few for node index {last - 1}: use a larger "
                              f"--pod-cidr or a larger --node-cidr-mask-size")
        if self.count and last + 1 >= nodes.num_addresses:
            raise ConfigError(f"--node-ip-range {self.node_ip_range} has too few addresses for node "
                              f"index {last - 1}")

    # -- naming and addresses ------------------------------------------------------------

    def node_names(self) -> list[str]:
        return [self.node_name(i) for i in range(self.start_index, self.start_index + self.count)]

    def node_name(self, index: int) -> str:
        return f"{self.name_prefix}{index}"

    def node_index(self, name: str) -> int | None:
        """The index of one of our nodes from its name, or None when the name is not ours."""
        if not name.startswith(self.name_prefix):
            return None
        rest = name[len(self.name_prefix):]
        if not rest.isdigit() or (len(rest) > 1 and rest[0] == "0"):
            return None
        index = int(rest)
        if not self.start_index <= index < self.start_index + self.count:
            return None
        return index

    def node_ip(self, index: int) -> str:
        net = ipaddress.ip_network(self.node_ip_range)
        return str(net.network_address + index + 1)

    def node_pod_cidr(self, index: int) -> str:
        pods = ipaddress.ip_network(self.pod_cidr)
        size = 2 ** (pods.max_prefixlen - self.node_cidr_mask_size)
        return str(ipaddress.ip_network((int(pods.network_address) + index * size, self.node_cidr_mask_size)))

    def zone(self, index: int) -> str | None:
        return self.zones[index % len(self.zones)] if self.zones else None


# -- flag forms ---------------------------------------------------------------------------------


def parse_labels(text: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` (a value may be empty: ``k=``)."""
    out: dict[str, str] = {}
    for item in _items(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--labels: {item!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def parse_taints(text: str | None) -> list[dict[str, str]]:
    """``key=value:Effect`` or ``key:Effect``, comma-separated."""
    out: list[dict[str, str]] = []
    for item in _items(text):
        head, sep, effect = item.rpartition(":")
        if not sep or effect not in TAINT_EFFECTS:
            raise ConfigError(f"--taints: {item!r} needs an effect, one of {', '.join(TAINT_EFFECTS)}")
        key, has_value, value = head.partition("=")
        if not key:
            raise ConfigError(f"--taints: {item!r} has no key")
        taint = {"key": key, "effect": effect}
        if has_value and value:
            taint["value"] = value
        out.append(taint)
    return out


def parse_list(text: str | None) -> list[str]:
    return list(_items(text))


def _items(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]
