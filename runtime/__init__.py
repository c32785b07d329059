"""The node's container runtime: a gRPC server implementing ``proto/runtime.proto`` (modelled on the
Kubernetes CRI RuntimeService and ImageService). It runs containers with runc from OCI bundles,
keeps OCI images in a content store (``runtime.images``), pulls them from OCI registries, and
wires pod networks with CNI plugins; a hollow driver simulates containers for scale tests.
"""
