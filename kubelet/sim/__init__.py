"""Simulated nodes (KWOK-style): one process that plays the node agent for many Nodes.

It registers Nodes that look real to controllers and kubectl (capacity, conditions, addresses,
node info), renews one Lease per node in ``kube-node-lease``, and acts out the life of every pod
bound to its nodes without running anything: Running and Ready with a pod IP, containers that
exit when annotated to (``sim.navarch.io/exit-after``, ``sim.navarch.io/exit-code``) with the
pod's restart policy applied, and graceful deletion confirmed.

Modules: ``config`` (settings, flag parsing, address ranges), ``nodes`` (Node and Lease objects),
``podstatus`` (pod status as a pure function of simulated state), ``pods`` (the per-pod state
machine and its sync loop), ``ipam`` (pod IPs per node), ``simulator`` (wiring), ``app`` (the
``navarch simulate-nodes`` command line).
"""
