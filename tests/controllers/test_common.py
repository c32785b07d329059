"""Shared controller pieces that need no server: the compiled label matcher agrees with the
selector it was made from."""

from __future__ import annotations

import pytest

from api.selectors import LabelSelector, from_label_selector, from_set
from controller_manager.common import label_matcher

SELECTORS = [
    ("matchLabels", from_label_selector({"matchLabels": {"app": "web", "pod-template-hash": "abc"}})),
    ("In one value", from_label_selector({"matchExpressions": [{"key": "app", "operator": "In",
                                                                "values": ["web"]}]})),
    ("In two values", from_label_selector({"matchExpressions": [{"key": "app", "operator": "In",
                                                                 "values": ["web", "db"]}]})),
    ("NotIn", from_label_selector({"matchExpressions": [{"key": "app", "operator": "NotIn",
                                                         "values": ["db"]}]})),
    ("Exists", from_label_selector({"matchExpressions": [{"key": "tier", "operator": "Exists"}]})),
    ("labels and DoesNotExist", from_label_selector({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "canary", "operator": "DoesNotExist"}]})),
    ("from a set", from_set({"app": "web"})),
    ("everything", LabelSelector.everything()),
    ("nothing", LabelSelector.nothing()),
]

LABELS = [
    {},
    {"app": "web"},
    {"app": "db"},
    {"app": "web", "pod-template-hash": "abc"},
    {"app": "web", "pod-template-hash": "abd"},
    {"app": "web", "pod-template-hash": "abc", "tier": "front"},
    {"pod-template-hash": "abc"},
    {"app": "web", "canary": "true"},
    {"app": "", "tier": ""},
]


@pytest.mark.parametrize(("name", "selector"), SELECTORS, ids=[n for n, _ in SELECTORS])
def test_label_matcher_agrees_with_the_selector(name, selector):
    match = label_matcher(selector)
    for labels in LABELS:
        assert match(labels) == selector.matches(labels), labels
