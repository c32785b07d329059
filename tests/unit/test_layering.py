"""Who may import whom (DESIGN.md): a wrong arrow between packages fails here."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS = {"api", "client", "apiserver", "scheduler", "controller_manager", "kubelet", "proxy", "runtime",
        "proto", "cli", "navarch"}
ALLOWED = {
    "api": set(),
    "proto": set(),
    "client": {"api"},
    # apiserver decodes Kubernetes protobuf request bodies with the messages in proto/k8s.
    "apiserver": {"api", "proto"},
    "runtime": {"proto"},
    "scheduler": {"api", "client"},
    "controller_manager": {"api", "client"},
    "kubelet": {"api", "client", "proto"},
    "proxy": {"api", "client"},
    "cli": {"api", "client"},
    "navarch": OURS,
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def test_packages_import_only_what_the_design_allows():
    wrong = []
    for package, allowed in ALLOWED.items():
        root = REPO / package
        if not root.is_dir():
            continue
        for path in root.rglob("*.py"):
            for imported in imports_of(path) - allowed - {package}:
                wrong.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not wrong, "imports against the layering in DESIGN.md:\n" + "\n".join(sorted(wrong))


def test_the_check_sees_imports():
    # A test that cannot fail is a defect: the walker must find a known import.
    assert "api" in imports_of(REPO / "client" / "rest.py")
