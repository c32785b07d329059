"""Pod IPs from a node's pod range: hand out free host addresses, take them back, adopt ones
already in use (after a restart).

The first host address of a range is left out, as a bridge network would keep it for its gateway.
Addresses are handed out round-robin, so one just released is not reused at once.
"""

from __future__ import annotations

import ipaddress


class RangeFull(Exception):
    """Every address of the node's pod range is in use."""


class PodIPs:
    def __init__(self, cidr: str):
        self.cidr = cidr
        net = ipaddress.ip_network(cidr)
        # Usable: network + 2 .. broadcast - 1 (network + 1 is the gateway's).
        self._first = int(net.network_address) + 2
        self._size = max(0, net.num_addresses - 3)
        self._version = net.version
        self._next = 0
        self._used: set[int] = set()

    def __len__(self) -> int:
        return len(self._used)

    def contains(self, ip: str) -> bool:
        try:
            n = int(ipaddress.ip_address(ip))
        except ValueError:
            return False
        return self._first <= n < self._first + self._size

    def allocate(self) -> str:
        if len(self._used) >= self._size:
            raise RangeFull(f"no free address in {self.cidr}")
        while True:
            n = self._first + self._next
            self._next = (self._next + 1) % self._size
            if n not in self._used:
                self._used.add(n)
                if self._version == 4:
                    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
                return str(ipaddress.ip_address(n))

    def adopt(self, ip: str) -> bool:
        """Mark ``ip`` as in use if it belongs to this range; False when it does not."""
        if not self.contains(ip):
            return False
        self._used.add(int(ipaddress.ip_address(ip)))
        return True

    def release(self, ip: str | None) -> None:
        if ip and self.contains(ip):
            self._used.discard(int(ipaddress.ip_address(ip)))
