"""apiserver.codec: stored bytes, resourceVersion splicing and list bodies."""

from __future__ import annotations

import orjson
import pytest

from apiserver import codec

STORED = [
    codec.encode_for_storage({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a", "labels": {"x": "1"}},
                              "spec": {"containers": []}}),
    codec.encode_for_storage({"kind": "Pod", "apiVersion": "v1", "metadata": {}}),
    orjson.dumps({"spec": {}, "metadata": {"name": "written elsewhere"}}),   # metadata not first
]


@pytest.mark.parametrize("data", STORED)
def test_with_resource_version_sets_it_and_keeps_the_rest(data):
    obj = orjson.loads(codec.with_resource_version(data, 42))
    assert obj["metadata"]["resourceVersion"] == "42"
    del obj["metadata"]["resourceVersion"]
    assert obj == orjson.loads(data)


@pytest.mark.parametrize("cont,remaining", [("", None), ("token", 7)])
def test_a_stored_list_is_the_list_of_its_items_with_versions(cont, remaining):
    stored = [(d, i + 3) for i, d in enumerate(STORED)]
    expected = codec.list_body("PodList", "v1", 9, [codec.with_resource_version(d, r) for d, r in stored],
                               cont, remaining)
    for per_chunk in (1, 2, 500):
        assert b"".join(codec.stored_list_chunks("PodList", "v1", 9, stored, cont, remaining, per_chunk)) == expected
    body = orjson.loads(expected)
    assert [i["metadata"]["resourceVersion"] for i in body["items"]] == ["3", "4", "5"]
    assert orjson.loads(b"".join(codec.stored_list_chunks("PodList", "v1", 9, [])))["items"] == []
