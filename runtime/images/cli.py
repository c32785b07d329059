"""``navarch image``: import, list, pull and remove images in a node's image store.

``--root`` is the runtime's root (the same directory as ``navarch runtime --root``); the store is
its ``images/`` directory. A running runtime sees the changes (the records are shared on disk).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from runtime.images.errors import ImageError
from runtime.images.imagestore import Image, ImageStore
from runtime.images.registry import RegistryAuth

DEFAULT_ROOT = Path(os.environ.get("NAVARCH_RUNTIME_ROOT", "/var/lib/navarch/runtime"))
STORE_DIR = "images"


def store_root(runtime_root: Path) -> Path:
    """Where the image store of a runtime rooted at ``runtime_root`` lives."""
    return Path(runtime_root) / STORE_DIR


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.1f}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1000
    return f"{n}B"


def _rows(images: list[Image]) -> list[tuple[str, str, str, str]]:
    rows = []
    for img in sorted(images, key=lambda i: (i.repo_tags or ["~"])[0]):
        short = img.id.split(":", 1)[1][:13]
        names = [t.rsplit(":", 1) for t in img.repo_tags] or \
                [[d.split("@", 1)[0], "<none>"] for d in img.repo_digests[:1]] or [["<none>", "<none>"]]
        for repo, tag in names:
            rows.append((repo, tag, short, _human(img.size)))
    return rows


def _print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="navarch image", description="Manage the node's images.")
    p.add_argument("--root", type=Path, default=None,
                   help=f"runtime root directory (default {DEFAULT_ROOT}); images live in ROOT/{STORE_DIR}")
    sub = p.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="import an OCI layout (directory or tar) or a docker-archive tar")
    imp.add_argument("file", type=Path)
    imp.add_argument("--name", help="repository for images the archive tags with a bare tag (e.g. example.com/app)")
    sub.add_parser("ls", help="list images")
    pull = sub.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("ref")
    pull.add_argument("--insecure-registry", action="append", default=[], metavar="HOST:PORT")
    pull.add_argument("--username", default="")
    pull.add_argument("--password", default=None, help="(asked for when --username is given without it)")
    rm = sub.add_parser("rm", help="remove images")
    rm.add_argument("refs", nargs="+")
    for sp in (imp, pull, rm, sub.choices["ls"]):
        sp.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


async def _run(args: argparse.Namespace) -> int:
    root = store_root(args.root or DEFAULT_ROOT)
    store = ImageStore(root, insecure_registries=getattr(args, "insecure_registry", ()))
    try:
        if args.cmd == "import":
            images = await store.import_archive(args.file, name=args.name)
            for img in images:
                print(f"imported {', '.join(img.repo_tags) or '<untagged>'} {img.id}")
        elif args.cmd == "ls":
            _print_table(_rows(store.list()), ("IMAGE", "TAG", "IMAGE ID", "SIZE"))
        elif args.cmd == "pull":
            auth = None
            if args.username:
                password = args.password if args.password is not None else getpass.getpass("Password: ")
                auth = RegistryAuth(username=args.username, password=password)
            img = await store.pull(args.ref, auth)
            print(f"pulled {args.ref} {img.id}")
        elif args.cmd == "rm":
            for ref in args.refs:
                await store.remove(ref)
                print(f"removed {ref}")
        return 0
    finally:
        await store.close()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ImageError as e:
        print(f"navarch image {args.cmd}: {e}", file=sys.stderr)
        return 1
    except PermissionError as e:
        print(f"navarch image {args.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
