"""``kubelet`` imports ``api``, ``client``, ``proto`` and itself, nothing else of ours."""

from pathlib import Path

import pytest

from tests.unit.test_client_imports import OURS, imported_packages

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {"api", "client", "proto", "kubelet"}


@pytest.mark.parametrize("path", sorted((REPO / "kubelet").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_kubelet_module_imports_only_what_it_may(path):
    wrong = (imported_packages(path) & OURS) - ALLOWED
    assert not wrong, f"{path.relative_to(REPO)} imports {sorted(wrong)}"


def test_the_check_sees_the_simulator():
    assert imported_packages(REPO / "kubelet" / "sim" / "pods.py") >= {"api", "client", "kubelet"}
