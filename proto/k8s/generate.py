"""Regenerate the Python modules for the Kubernetes ``.proto`` files in this package.

``python -m proto.k8s.generate`` rewrites the ``*_pb2.py`` files beside the ``.proto`` files;
``generate(out_dir)`` writes them elsewhere (the staleness test compares the two). The files are
compiled as ``k8s/<name>.proto`` so their names in the descriptor pool never clash with
``proto/runtime.proto``; protoc's ``from k8s import x_pb2`` lines become package-relative imports.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

K8S_DIR = Path(__file__).resolve().parent
PROTOS = ("options.proto", "runtime.proto", "resource.proto", "intstr.proto", "meta.proto",
          "core.proto", "apps.proto", "batch.proto", "scheduling.proto", "coordination.proto",
          "policy.proto")


def generate(out_dir: Path = K8S_DIR) -> list[Path]:
    """Compile every proto in PROTOS into ``out_dir``; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).resolve().parent / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="k8s-proto-") as tmp:
        args = ["grpc_tools.protoc", f"-I{K8S_DIR.parent}", f"-I{include}", f"--python_out={tmp}"]
        rc = protoc.main([*args, *(f"k8s/{name}" for name in PROTOS)])
        if rc != 0:
            raise RuntimeError(f"protoc failed with status {rc}")
        for name in PROTOS:
            stem = name.removesuffix(".proto")
            text = (Path(tmp) / "k8s" / f"{stem}_pb2.py").read_text()
            text = re.sub(r"^from k8s import (\w+_pb2) as ", r"from . import \1 as ", text, flags=re.MULTILINE)
            path = out_dir / f"{stem}_pb2.py"
            path.write_text(text)
            written.append(path)
    return written


def main() -> int:
    for path in generate():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
