"""The launcher: composes components into processes (``navarch apiserver``, ``navarch up``, ...)."""
