"""``client`` imports ``api`` and itself, nothing else of ours (the house import rule)."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"api", "apiserver", "client", "cli", "controller_manager", "kubelet", "navarch", "proto", "proxy",
        "runtime", "scheduler", "tests", "bench"}
ALLOWED = {"api", "client"}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted((REPO / "client").rglob("*.py")), ids=lambda p: p.name)
async def test_client_module_imports_only_api(path):
    wrong = (imported_packages(path) & OURS) - ALLOWED
    assert not wrong, f"{path.relative_to(REPO)} imports {sorted(wrong)}"


async def test_the_check_sees_imports():
    assert imported_packages(REPO / "client" / "informer.py") >= {"api", "client", "aiohttp"}
