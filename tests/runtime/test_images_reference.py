"""Image reference parsing and docker.io normalization."""

import pytest

from runtime.images import InvalidReference, parse_reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("ref, want", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
    ("user/app", "docker.io/user/app:latest"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
    ("quay.io/org/sub/app:v1.2_3-rc", "quay.io/org/sub/app:v1.2_3-rc"),
    (f"x@{D}", f"docker.io/library/x@{D}"),
    (f"example.com/x:tag@{D}", f"example.com/x:tag@{D}"),
    ("a-b__c/d.e", "docker.io/a-b__c/d.e:latest"),
    ("[::1]:5000/app", "[::1]:5000/app:latest"),
    ("localhost:5000", "docker.io/library/localhost:5000"),
])
def test_parse_normalizes(ref, want):
    assert str(parse_reference(ref)) == want


def test_parts_of_a_reference():
    r = parse_reference(f"localhost:5000/a/b:tag@{D}")
    assert (r.domain, r.path, r.tag, r.digest) == ("localhost:5000", "a/b", "tag", D)
    assert r.name == "localhost:5000/a/b"
    assert r.object == D
    assert parse_reference("busybox").object == "latest"


@pytest.mark.parametrize("ref, reason", [
    ("", "empty"),
    ("Busybox", "lowercase"),
    ("example.com/App:1", "lowercase"),
    ("busybox:", "invalid tag"),
    ("busybox:-x", "invalid tag"),
    ("busybox@sha256:abc", "invalid digest"),
    ("busybox@sha512:" + "a" * 128, "only lowercase sha256"),
    ("busybox@sha256:" + "A" * 64, "only lowercase sha256"),
    ("a//b", "invalid repository path component"),
    ("a/b_/c", "invalid repository path component"),
    ("bad host!/x", "whitespace"),
    ("-host.com/x", "invalid registry host"),
    (":tag", "no repository name"),
    ("a" * 256, "longer than 255"),
    (" busybox", "whitespace"),
])
def test_parse_rejects(ref, reason):
    with pytest.raises(InvalidReference, match=reason):
        parse_reference(ref)
