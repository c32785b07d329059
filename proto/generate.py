"""Regenerate the Python modules for the ``.proto`` files in this package with grpcio-tools.

``python -m proto.generate`` rewrites ``runtime_pb2.py`` and ``runtime_pb2_grpc.py`` in place;
``generate(out_dir)`` writes them elsewhere (the staleness test compares the two). protoc emits
top-level imports between generated modules; they are rewritten to package-relative imports so
the modules load as ``proto.runtime_pb2``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTOS = ("runtime.proto",)


def generate(out_dir: Path = PROTO_DIR) -> list[Path]:
    """Compile every proto in PROTOS into ``out_dir``; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).resolve().parent / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in PROTOS:
        rc = protoc.main(["grpc_tools.protoc", f"-I{PROTO_DIR}", f"-I{include}",
                          f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", name])
        if rc != 0:
            raise RuntimeError(f"protoc failed on {name} with status {rc}")
        stem = name.removesuffix(".proto")
        for path in (out_dir / f"{stem}_pb2.py", out_dir / f"{stem}_pb2_grpc.py"):
            text = path.read_text()
            text = re.sub(r"^import (\w+_pb2) as ", r"from . import \1 as ", text, flags=re.MULTILINE)
            path.write_text(text)
            written.append(path)
    return written


def main() -> int:
    for path in generate():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
