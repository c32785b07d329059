"""The node agent: registers its Node, renews its Lease, syncs the pods bound to it through the
runtime, runs probes and reports their status.

``kubelet.sim`` is a simulated agent for tests and benchmarks: one process that plays the node
agent for thousands of Nodes without running any container (``navarch simulate-nodes``).
"""
