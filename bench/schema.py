"""Cost of schema validation and patches per object: ``python -m bench.schema``.

Prints figures, asserts nothing: what a server pays to load the schemas and compile a kind's
checker, then per object. kubernetes_validate's own ``validate`` is timed beside it for scale.
"""

from __future__ import annotations

import copy
import time
from typing import Any


def make_pod(i: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"web-{i}", "namespace": "default", "uid": f"u-{i}", "resourceVersion": str(i),
                     "creationTimestamp": "2025-01-02T03:04:05Z", "labels": {"app": "web", "pod": str(i)},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                                          "uid": "u-rs", "controller": True}]},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
                                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "emptyDir": {}}], "restartPolicy": "Always", "nodeName": "n1"},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "startTime": "2025-01-02T03:04:06Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2025-01-02T03:04:07Z"}]},
    }


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    from api import patch, schema

    pod = make_pod()
    name = schema.definition_name("", "v1", "Pod")

    t = time.perf_counter()
    schema.definitions()
    schema.definitions(strict=True)
    print(f"load _definitions.json (both)      {1000 * (time.perf_counter() - t):8.1f} ms")

    t = time.perf_counter()
    schema.warm([name])
    print(f"compile Pod checker                {1000 * (time.perf_counter() - t):8.1f} ms")

    assert schema.validate(pod) == []
    print(f"validate Pod                       {per_call(lambda: schema.validate(pod), 5000):8.3f} ms/object")
    bad = copy.deepcopy(pod)
    del bad["spec"]["containers"][0]["name"]
    print(f"validate Pod with an error         {per_call(lambda: schema.validate(bad), 2000):8.3f} ms/object")
    print(f"unknown_fields Pod                 {per_call(lambda: schema.unknown_fields(pod), 5000):8.3f} ms/object")
    print(f"check Pod (both in one pass)       {per_call(lambda: schema.check(pod), 5000):8.3f} ms/object")

    meta = schema.merge_info("", "v1", "Pod")
    body = {"metadata": {"labels": {"pod": None, "x": "y"}},
            "spec": {"containers": [{"name": "nginx", "env": [{"name": "B", "value": "3"}]}]}}
    print(f"strategic merge patch Pod          "
          f"{per_call(lambda: patch.strategic_merge_patch(pod, body, meta), 5000):8.3f} ms/object")
    print(f"merge patch Pod                    "
          f"{per_call(lambda: patch.merge_patch(pod, {'metadata': {'labels': {'x': 'y'}}}), 5000):8.3f} ms/object")
    modified = copy.deepcopy(pod)
    modified["spec"]["containers"][0]["image"] = "nginx:2"
    print(f"three-way patch Pod                "
          f"{per_call(lambda: patch.create_three_way_merge_patch(pod, modified, pod, meta), 2000):8.3f} ms/object")

    try:
        import kubernetes_validate
    except ImportError:
        return
    kubernetes_validate.validate(pod, "1.32", strict=True)
    print(f"kubernetes_validate.validate Pod   "
          f"{per_call(lambda: kubernetes_validate.validate(pod, '1.32', strict=True), 20):8.3f} ms/object")


if __name__ == "__main__":
    main()
