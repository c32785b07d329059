"""``navarch scheduler`` refuses bad flags and configuration before it connects anywhere."""

from __future__ import annotations

import pytest

from scheduler.app import main, parser


@pytest.mark.parametrize("content,message", [
    ("profiles: []\n", "profiles: must be a non-empty list"),
    ("profiles:\n- plugins: {filter: {enabled: [{name: Nope}]}}\n", "unknown plugin 'Nope'"),
    ("kind: Pod\n", "kind: expected KubeSchedulerConfiguration"),
    ("profiles: [\n", "not valid YAML"),
])
def test_bad_config_exits_2_naming_the_field(tmp_path, capsys, content, message):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(content)
    assert main(["--config", str(cfg)]) == 2
    assert message in capsys.readouterr().err


def test_bad_duration_exits_2(capsys):
    assert main(["--leader-elect", "--leader-elect-lease-duration", "soon"]) == 2
    assert "--leader-elect-lease-duration" in capsys.readouterr().err


def test_defaults():
    args = parser().parse_args([])
    assert (args.port, args.bind_address, args.leader_elect) == (10259, "127.0.0.1", False)
    assert args.leader_elect_resource_name == "navarch-scheduler"
    assert args.leader_elect_resource_namespace == "kube-system"
