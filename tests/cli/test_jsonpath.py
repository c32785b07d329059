"""kubectl's JSONPath templates as ``-o jsonpath=`` evaluates them, and the age format."""

from __future__ import annotations

import pytest

from cli.jsonpath import JSONPathError, render
from cli.printing import human_duration

DOC = {
    "kind": "List",
    "items": [
        {"metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}},
         "spec": {"replicas": 1, "containers": [{"name": "c1", "image": "nginx"}, {"name": "c2", "image": "redis"}]},
         "status": {"ready": True}},
        {"metadata": {"name": "b", "labels": {"app": "db"}},
         "spec": {"replicas": 3, "containers": [{"name": "c3", "image": "postgres"}]},
         "status": {"ready": False}},
    ],
}


@pytest.mark.parametrize("template,expected", [
    ("{.items[*].metadata.name}", "a b"),
    ("{.items[0].metadata.name}", "a"),
    ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ("{.items[5].metadata.name}", ""),
    ("{.items[*].spec.containers[*].image}", "nginx redis postgres"),
    ('{range .items[*]}{.metadata.name}{"\\n"}{end}', "a\nb\n"),
    ("{range .items[*]}[{.metadata.name},{.spec.replicas}]{end}", "[a,1][b,3]"),
    ('{.items[?(@.metadata.name=="b")].spec.replicas}', "3"),
    ("{.items[?(@.spec.replicas>1)].metadata.name}", "b"),
    ("{.items[?(@.metadata.labels.tier)].metadata.name}", "a"),
    ("{.items[0].metadata.labels}", '{"app":"web","tier":"front"}'),
    ("{.items[0].metadata['labels']['app']}", "web"),
    ("{.items[*].status.ready}", "true false"),
    ("{..image}", "nginx redis postgres"),
    ("{.items[0].spec.containers[0,1].name}", "c1 c2"),
    ("{.kind}: {.items[1].metadata.name}", "List: b"),
    (".items[1].metadata.name", "b"),
    ("{.missing.field}", ""),
    ("{'x'}{\"\\t\"}", "x\t"),
])
def test_templates(template, expected):
    assert render(template, DOC) == expected


@pytest.mark.parametrize("template", ["{.items[0", "{range .items[*]}{.x}", "{end}"])
def test_malformed_templates(template):
    with pytest.raises(JSONPathError):
        render(template, DOC)


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (59, "59s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 5, "3h"),
    (5 * 3600 + 20 * 60, "5h20m"), (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (40 * 86400, "40d"),
    (800 * 86400, "2y"),
])
def test_ages(seconds, text):
    assert human_duration(seconds) == text
