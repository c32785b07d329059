"""The scheduling plugins, one module each, with Kubernetes' semantics and messages.

``registry.REGISTRY`` maps plugin names to classes; a class is built as ``cls(args, handle)``
and may offer ``validate_args(args)`` (raising ``profile.ConfigError``).
"""
