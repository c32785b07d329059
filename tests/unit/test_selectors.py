"""Label and field selectors: parsing, canonical strings, matching, Kubernetes' error wording."""

import pytest

from api.errors import BadRequest
from api.selectors import (
    FieldSelector,
    LabelSelector,
    field_getter,
    from_label_selector,
    from_set,
    parse_field_selector,
    parse_label_selector,
    requires_exact_name,
    selector_to_string,
    supported_fields,
)

# (selector, labels, expected match)
LABEL_MATCHES = [
    ("", {}, True),
    ("", {"a": "b"}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {"a": "c"}, True),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a in (x,y)", {}, False),
    ("a notin (x,y)", {"a": "z"}, True),
    ("a notin (x,y)", {}, True),
    ("a notin (x,y)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": "c"}, False),
    ("!a", {"b": "c"}, True),
    ("!a", {"a": "c"}, False),
    ("a>5", {"a": "6"}, True),
    ("a>5", {"a": "5"}, False),
    ("a<5", {"a": "4"}, True),
    ("a>5", {"a": "x"}, False),
    ("a>5", {}, False),
    ("a=", {"a": ""}, True),
    ("a=", {"a": "x"}, False),
    ("a in (x,)", {"a": ""}, True),
    ("a=b,c!=d,e in (x,y),f notin (z),g,!h", {"a": "b", "c": "x", "e": "x", "f": "y", "g": "1"}, True),
    ("a=b,c!=d,e in (x,y),f notin (z),g,!h", {"a": "b", "e": "x", "g": "1", "h": "1"}, False),
    (" a = b , c ", {"a": "b", "c": "d"}, True),
    ("example.com/app=web", {"example.com/app": "web"}, True),
    ("in in (in)", {"in": "in"}, True),
]


@pytest.mark.parametrize("text,labels,expected", LABEL_MATCHES)
def test_label_selector_matches(text, labels, expected):
    assert parse_label_selector(text).matches(labels) is expected


CANONICAL = [
    ("b=1,a=2", "a=2,b=1"),
    ("a==b", "a==b"),
    ("x in (c, b,a)", "x in (a,b,c)"),
    ("x notin (b,a)", "x notin (a,b)"),
    ("!x, y", "!x,y"),
    ("a>5", "a>5"),
    ("a in (b,)", "a in (,b)"),
    ("", ""),
]


@pytest.mark.parametrize("text,expected", CANONICAL)
def test_label_selector_canonical_string(text, expected):
    sel = parse_label_selector(text)
    assert str(sel) == expected
    assert parse_label_selector(str(sel)) == sel


PARSE_ERRORS = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("a,", "found '', expected: identifier after ','"),
    ("=", "found '=', expected: !, identifier, or 'end of string'"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a/b/c=1", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, "
            "the value must be an integer"),
    ("a=-b", "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be"),
    ("-a=b", "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of"),
]


@pytest.mark.parametrize("text,message", PARSE_ERRORS)
def test_label_selector_parse_errors(text, message):
    with pytest.raises(BadRequest) as exc:
        parse_label_selector(text)
    assert exc.value.message.startswith(message), exc.value.message
    assert exc.value.code == 400


FROM_OBJECT = [
    ({}, {"a": "b"}, True, ""),
    ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True, "app=web"),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False, "app=web"),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}, {"tier": "a"}, True,
     "tier in (a,b)"),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False,
     "tier notin (a)"),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True, "tier"),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": ""}, False, "!tier"),
    ({"matchLabels": {"b": "1"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]},
     {"a": "x", "b": "1"}, True, "a,b=1"),
]


@pytest.mark.parametrize("sel,labels,expected,text", FROM_OBJECT)
def test_from_label_selector(sel, labels, expected, text):
    s = from_label_selector(sel)
    assert s.matches(labels) is expected
    assert str(s) == text
    assert selector_to_string(sel) == text


def test_nil_selector_matches_nothing_and_empty_everything():
    assert not from_label_selector(None).matches({"a": "b"})
    assert not from_label_selector(None).matches({})
    assert from_label_selector({}).matches({})
    assert from_label_selector({}).empty()
    assert not LabelSelector.nothing().empty()


@pytest.mark.parametrize("sel,message", [
    ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
     '"Equals" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     "values set must be empty for exists and does not exist"),
    ({"matchLabels": {"bad key": "x"}}, 'key: Invalid value: "bad key"'),
    ({"matchLabels": ["a"]}, "invalid label selector"),
    ({"matchExpressions": ["a"]}, "invalid label selector"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": [5]}]}, "invalid label selector"),
])
def test_from_label_selector_errors(sel, message):
    with pytest.raises(BadRequest) as exc:
        from_label_selector(sel)
    assert message in exc.value.message


def test_from_set_is_equality_on_every_pair():
    s = from_set({"app": "web", "tier": "fe"})
    assert s.matches({"app": "web", "tier": "fe", "x": "1"})
    assert not s.matches({"app": "web"})
    assert str(s) == "app=web,tier=fe"
    assert from_set({}).matches({"any": "thing"})
    assert from_set(None).empty()


def test_label_selector_does_not_mutate_and_accepts_none_labels():
    labels = {"a": "b"}
    parse_label_selector("a=b,!c").matches(labels)
    assert labels == {"a": "b"}
    assert parse_label_selector("!c").matches(None)


# ---------------------------------------------------------------------------------------------
# Field selectors


def make_pod(name="p", ns="default", node="", phase="Pending", host_network=None, **spec):
    pod = {"kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"nodeName": node, **spec}, "status": {"phase": phase}}
    if host_network is not None:
        pod["spec"]["hostNetwork"] = host_network
    return pod


FIELD_MATCHES = [
    ("", make_pod(), "Pod", True),
    ("metadata.name=p", make_pod(), "Pod", True),
    ("metadata.name==p", make_pod(), "Pod", True),
    ("metadata.name!=p", make_pod(), "Pod", False),
    ("metadata.namespace=default", make_pod(), "Pod", True),
    ("spec.nodeName=n1", make_pod(node="n1"), "Pod", True),
    ("spec.nodeName=", make_pod(), "Pod", True),
    ("spec.nodeName!=", make_pod(node="n1"), "Pod", True),
    ("status.phase=Running,spec.nodeName=n1", make_pod(node="n1", phase="Running"), "Pod", True),
    ("status.phase=Running,spec.nodeName=n1", make_pod(node="n2", phase="Running"), "Pod", False),
    ("spec.hostNetwork=false", make_pod(), "Pod", True),
    ("spec.hostNetwork=true", make_pod(host_network=True), "Pod", True),
    ("spec.schedulerName=default-scheduler", make_pod(schedulerName="default-scheduler"), "Pod", True),
    ("spec.restartPolicy=Never", make_pod(restartPolicy="Never"), "Pod", True),
    ("spec.serviceAccountName=sa", make_pod(serviceAccountName="sa"), "Pod", True),
    ("status.podIP=10.0.0.1", {"metadata": {}, "status": {"podIP": "10.0.0.1"}}, "Pod", True),
    ("status.nominatedNodeName=n", {"metadata": {}, "status": {"nominatedNodeName": "n"}}, "Pod", True),
    ("spec.unschedulable=true", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}, "Node", True),
    ("spec.unschedulable=false", {"metadata": {"name": "n"}, "spec": {}}, "Node", True),
    ("metadata.name=n", {"metadata": {"name": "n"}}, "Node", True),
    ("involvedObject.kind=Pod,involvedObject.name=p,reason=Started",
     {"metadata": {}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started"}, "Event", True),
    ("involvedObject.uid=u", {"metadata": {}, "involvedObject": {"uid": "x"}}, "Event", False),
    ("source=kubelet", {"metadata": {}, "source": {"component": "kubelet"}}, "Event", True),
    ("source=ctrl", {"metadata": {}, "source": {}, "reportingController": "ctrl"}, "Event", True),
    ("reportingComponent=ctrl", {"metadata": {}, "reportingController": "ctrl"}, "Event", True),
    ("type=Warning", {"metadata": {}, "type": "Warning"}, "Event", True),
    ("type=kubernetes.io/tls", {"metadata": {}, "type": "kubernetes.io/tls"}, "Secret", True),
    ("status.phase=Active", {"metadata": {}, "status": {"phase": "Active"}}, "Namespace", True),
    ("status.replicas=0", {"metadata": {}, "status": {}}, "ReplicaSet", True),
    ("status.replicas=3", {"metadata": {}, "status": {"replicas": 3}}, "ReplicaSet", True),
    ("status.successful=1", {"metadata": {}, "status": {"successful": 1}}, "Job", True),
    ("spec.type=NodePort", {"metadata": {}, "spec": {"type": "NodePort"}}, "Service", True),
    ("metadata.name=a\\,b", {"metadata": {"name": "a,b"}}, "ConfigMap", True),
]


@pytest.mark.parametrize("text,obj,kind,expected", FIELD_MATCHES)
def test_field_selector_matches(text, obj, kind, expected):
    assert parse_field_selector(text, kind).matches(obj, kind) is expected


def test_field_selector_kind_defaults_to_objects_kind():
    assert parse_field_selector("spec.nodeName=n1").matches(make_pod(node="n1"))


@pytest.mark.parametrize("text,kind,message", [
    ("spec.foo=bar", "Pod", "field label not supported: spec.foo"),
    ("spec.unschedulable=true", "Pod", "field label not supported: spec.unschedulable"),
    ("spec.foo=bar", "Service", "field label not supported: spec.foo"),
    ("spec.nodeName=x", "ConfigMap",
     '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("status.phase=Running", "Deployment",
     '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace"'),
])
def test_unsupported_field_is_bad_request(text, kind, message):
    with pytest.raises(BadRequest) as exc:
        parse_field_selector(text, kind)
    assert exc.value.message == message
    # Without a kind at parse time the check happens at match time.
    sel = parse_field_selector(text)
    with pytest.raises(BadRequest):
        sel.matches({"metadata": {}}, kind)


@pytest.mark.parametrize("text", ["foo", "a=b,c", "a=b\\x"])
def test_field_selector_syntax_errors(text):
    with pytest.raises(BadRequest) as exc:
        parse_field_selector(text)
    assert "invalid selector" in exc.value.message


def test_field_selector_string_form():
    sel = parse_field_selector("metadata.name=a\\,b,spec.nodeName!=x")
    assert str(sel) == "metadata.name=a\\,b,spec.nodeName!=x"
    assert sel == parse_field_selector(str(sel))
    assert FieldSelector().empty()


@pytest.mark.parametrize("text,expected", [
    ("metadata.name=web", "web"),
    ("metadata.name==web,metadata.namespace=x", "web"),
    ("metadata.namespace=x,metadata.name=web", "web"),
    ("metadata.name!=web", None),
    ("spec.nodeName=n", None),
    ("", None),
    (None, None),
])
def test_requires_exact_name(text, expected):
    assert requires_exact_name(text) == expected
    if text:
        assert requires_exact_name(parse_field_selector(text)) == expected


def test_field_getters_and_supported_fields():
    assert {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"} <= supported_fields("Pod")
    assert supported_fields("ConfigMap") == {"metadata.name", "metadata.namespace"}
    assert field_getter("Pod", "spec.nodeName")(make_pod(node="n9")) == "n9"
    assert field_getter("Pod", "spec.hostNetwork")(make_pod()) == "false"
    assert field_getter("ConfigMap", "spec.nodeName") is None
