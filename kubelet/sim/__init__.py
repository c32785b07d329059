"""Simulated nodes (KWOK-style): one process that plays the node agent for many Nodes.

It registers Nodes that look real to controllers and kubectl (capacity, conditions, addresses,
node info), renews one Lease per node in ``kube-node-lease``, and acts out the life of every pod
bound to its nodes without running anything: Running and Ready with a pod IP, containers that
exit when annotated to (``sim.navarch.io/exit-after``, ``sim.navarch.io/exit-code``) with the
pod's restart policy applied, and graceful deletion confirmed.

Modules: ``config`` (settings, flag forms, the address plan), ``nodes`` (Node and Lease objects,
registration, heartbeats), ``lifecycle`` (a pod's simulated life, a pure state machine),
``podstatus`` (pod status as a function of that state), ``pods`` (the reconcile step that plays
the node agent for each pod, optional Events), ``ipam`` (pod IPs per node), ``simulator``
(wiring), ``writes`` (the bound on API writes, Leases first), ``metrics`` (Prometheus figures),
``app`` (the ``navarch simulate-nodes`` command).
"""
