"""Scheduler configuration files: profiles, plugin sets, weights, plugin arguments, errors."""

from __future__ import annotations

import pytest

from scheduler.framework import Framework
from scheduler.profile import ConfigError, default_profile, load_config, parse_config


def test_default_profile_has_kubernetes_plugins_and_weights():
    p = default_profile()
    assert p.scheduler_name == "default-scheduler"
    assert p.enabled("filter") == ["NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                                   "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity"]
    assert p.weights == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1, "PodTopologySpread": 2,
                         "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1}
    assert p.enabled("postFilter") == ["DefaultPreemption"]
    assert p.enabled("bind") == ["DefaultBinder"]
    assert p.enabled("queueSort") == ["PrioritySort"]


def test_config_file_with_two_profiles(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("""
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 20
podInitialBackoffSeconds: 2
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  percentageOfNodesToScore: 100
  plugins:
    score:
      disabled: [{name: NodeResourcesBalancedAllocation}]
      enabled: [{name: NodeResourcesFit, weight: 10}]
    filter:
      disabled: [{name: NodePorts}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy: {type: MostAllocated}
""")
    cfg = load_config(str(path))
    assert cfg.percentage_of_nodes_to_score == 20 and cfg.pod_initial_backoff_seconds == 2.0
    assert cfg.pod_max_backoff_seconds == 10.0
    assert [p.scheduler_name for p in cfg.profiles] == ["default-scheduler", "packer"]
    packer = cfg.profile("packer")
    assert packer is not None and packer.percentage_of_nodes_to_score == 100
    assert "NodePorts" not in packer.enabled("filter") and "NodePorts" in packer.enabled("preFilter")
    assert packer.weights["NodeResourcesFit"] == 10 and "NodeResourcesBalancedAllocation" not in packer.weights
    fw = Framework(packer)
    assert fw.plugins["NodeResourcesFit"].strategy == "MostAllocated"
    assert cfg.profile("nope") is None


def test_disable_all_then_enable():
    cfg = parse_config({"profiles": [{"plugins": {
        "multiPoint": {"disabled": [{"name": "*"}], "enabled": [{"name": "DefaultBinder"}, {"name": "NodeName"}]},
        "score": {"enabled": [{"name": "TaintToleration"}]}}}]})
    p = cfg.profiles[0]
    assert p.enabled("filter") == ["NodeName"] and p.enabled("score") == ["TaintToleration"]
    assert p.weights == {"TaintToleration": 1}
    assert p.enabled("postFilter") == []


def test_no_config_is_the_default():
    cfg = load_config(None)
    assert len(cfg.profiles) == 1 and cfg.profiles[0].enabled("filter") == default_profile().enabled("filter")
    assert cfg.percentage_of_nodes_to_score is None


@pytest.mark.parametrize("doc, field", [
    ({"kind": "Other"}, "kind"),
    ({"profiles": []}, "profiles"),
    ({"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]}, "profiles[1].schedulerName"),
    ({"profiles": [{"plugins": {"filter": {"enabled": [{"name": "NoSuchPlugin"}]}}}]},
     "profiles[0].plugins.filter.enabled[0].name"),
    ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "NodeName"}]}}}]},
     "profiles[0].plugins.score.enabled[0]"),
    ({"profiles": [{"plugins": {"sideways": {}}}]}, "profiles[0].plugins.sideways"),
    ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "NodeResourcesFit", "weight": 1000}]}}}]},
     "profiles[0].plugins.score.enabled[0].weight"),
    ({"profiles": [{"plugins": {"bind": {"disabled": [{"name": "*"}]}}}]}, "profiles[0].plugins.bind"),
    ({"profiles": [{"pluginConfig": [{"name": "NodeResourcesFit",
                                      "args": {"scoringStrategy": {"type": "Sideways"}}}]}]},
     "profiles[0].pluginConfig[NodeResourcesFit].args: scoringStrategy.type"),
    ({"profiles": [{"pluginConfig": [{"name": "Nope", "args": {}}]}]}, "profiles[0].pluginConfig[0].name"),
    ({"percentageOfNodesToScore": 150}, "percentageOfNodesToScore"),
    ({"podMaxBackoffSeconds": -1}, "podMaxBackoffSeconds"),
])
def test_bad_config_names_the_field(doc, field):
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    assert str(e.value).startswith(field), str(e.value)


def test_bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("profiles: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))
