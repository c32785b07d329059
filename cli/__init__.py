"""``navctl``: the kubectl-like command line of Navarch.

Each ``cmd_*`` module owns one verb family (its argument parser and its ``run``); ``context``
holds what every command shares (the parsed flags, the API client, the output streams and the
kubectl-style error types), ``printing`` and ``jsonpath`` render objects and Tables the way kubectl
does, ``manifests`` reads ``-f`` inputs and ``describe`` renders ``navctl describe``. The package
talks to the cluster only through ``client`` and understands objects only through ``api``.
"""
