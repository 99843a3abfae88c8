"""wegent.k8s.protobuf: the protobuf bodies kubectl 1.32 sends, and malformed ones.

The ``KUBECTL_*`` fixtures are the exact request bodies kubectl 1.32.5 sent to the capture server
(tools/kubectl_capture.py; the commands are in docs/notes/kubectl-protocol.md). The other bodies
are written field by field with the small encoder below, independently of the module's schema,
using the field numbers of Kubernetes' generated.proto files.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from wegent.k8s.protobuf import (
    CONTENT_TYPE,
    MAGIC,
    ProtobufDecodeError,
    UnsupportedKindError,
    decode,
    is_protobuf,
    peek_type,
)

# kubectl create namespace x
KUBECTL_CREATE_NAMESPACE = (
    "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a003200380042001200"
    "1a020a001a002200"
)
# kubectl create namespace x --save-config
KUBECTL_CREATE_NAMESPACE_SAVE_CONFIG = (
    "6b3873000a0f0a02763112094e616d65737061636512bf010ab6010a017812001a0022002a00320038004200"
    "62a2010a306b75626563746c2e6b756265726e657465732e696f2f6c6173742d6170706c6965642d636f6e6669"
    "6775726174696f6e126e7b226b696e64223a224e616d657370616365222c2261706956657273696f6e223a2276"
    "31222c226d65746164617461223a7b226e616d65223a2278222c226372656174696f6e54696d657374616d7022"
    "3a6e756c6c7d2c2273706563223a7b7d2c22737461747573223a7b7d7d0a12001a020a001a002200"
)
# kubectl auth whoami
KUBECTL_WHOAMI = (
    "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a656374"
    "526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200"
)
# kubectl auth whoami, after v1 answered 404 (kubectl then tries v1beta1, then v1alpha1)
KUBECTL_WHOAMI_V1BETA1 = (
    "6b3873000a320a1d61757468656e7469636174696f6e2e6b38732e696f2f76316265746131121153656c665375"
    "626a656374526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200"
)
# kubectl auth can-i create ghosts -n foo
KUBECTL_CAN_I_CREATE = (
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441"
    "6363657373526576696577124c0a100a0012001a0022002a00320038004200122e0a2c0a03666f6f1206637265"
    "6174651a0f6167656e742e7765636f64652e696f22002a0667686f73747332003a001a08080012001a0020001a"
    "002200"
)
# kubectl auth can-i update tasks --subresource=status   (context namespace alice)
KUBECTL_CAN_I_SUBRESOURCE = (
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441"
    "636365737352657669657712530a100a0012001a0022002a0032003800420012350a330a05616c696365120675"
    "70646174651a0f6167656e742e7765636f64652e696f22002a057461736b7332067374617475733a001a080800"
    "12001a0020001a002200"
)
# kubectl auth can-i delete ghosts/g1 -n foo
KUBECTL_CAN_I_NAME = (
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441"
    "6363657373526576696577124e0a100a0012001a0022002a0032003800420012300a2e0a03666f6f120664656c"
    "6574651a0f6167656e742e7765636f64652e696f22002a0667686f73747332003a0267311a08080012001a0020"
    "001a002200"
)
# kubectl auth can-i get /healthz
KUBECTL_CAN_I_NONRESOURCE = (
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a65637441"
    "6363657373526576696577122f0a100a0012001a0022002a003200380042001211120f0a082f6865616c74687a"
    "12036765741a08080012001a0020001a002200"
)
# kubectl auth can-i --list -n foo
KUBECTL_CAN_I_LIST = (
    "6b3873000a310a17617574686f72697a6174696f6e2e6b38732e696f2f7631121653656c665375626a65637452"
    "756c6573526576696577121f0a100a0012001a0022002a0032003800420012050a03666f6f1a04180022001a00"
    "2200"
)

KUBECTL_FIXTURES = [
    KUBECTL_CREATE_NAMESPACE,
    KUBECTL_CREATE_NAMESPACE_SAVE_CONFIG,
    KUBECTL_WHOAMI,
    KUBECTL_WHOAMI_V1BETA1,
    KUBECTL_CAN_I_CREATE,
    KUBECTL_CAN_I_SUBRESOURCE,
    KUBECTL_CAN_I_NAME,
    KUBECTL_CAN_I_NONRESOURCE,
    KUBECTL_CAN_I_LIST,
]

LAST_APPLIED = (
    '{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x","creationTimestamp":null},'
    '"spec":{},"status":{}}\n'
)


# ---------------------------------------------------------------------------------------------
# A protobuf encoder of a few lines, for bodies kubectl cannot be made to send


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten-byte two's complement
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages, map entries)."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def st(field: int, text: str) -> bytes:
    return ld(field, text.encode())


def vi(field: int, n: int) -> bytes:
    """A varint field (int32, int64, bool)."""
    return varint(field << 3) + varint(n)


def entry(field: int, key: str, value: bytes) -> bytes:
    """One map entry: key 1, value 2."""
    return ld(field, st(1, key) + value)


def envelope(api_version: str, kind: str, raw: bytes, *, extra: bytes = b"") -> bytes:
    type_meta = st(1, api_version) + st(2, kind)
    return MAGIC + ld(1, type_meta) + ld(2, raw) + st(3, "") + st(4, "") + extra


# ---------------------------------------------------------------------------------------------
# What kubectl 1.32 sends


def test_create_namespace() -> None:
    assert decode(bytes.fromhex(KUBECTL_CREATE_NAMESPACE)) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "x"},
        "spec": {},
        "status": {},
    }


def test_create_namespace_save_config_carries_the_annotation() -> None:
    assert decode(bytes.fromhex(KUBECTL_CREATE_NAMESPACE_SAVE_CONFIG)) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "x",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED},
        },
        "spec": {},
        "status": {},
    }


def test_whoami() -> None:
    assert decode(bytes.fromhex(KUBECTL_WHOAMI)) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
        "status": {"userInfo": {}},
    }


def test_whoami_beta_is_a_kind_this_module_does_not_decode() -> None:
    body = bytes.fromhex(KUBECTL_WHOAMI_V1BETA1)
    with pytest.raises(UnsupportedKindError) as info:
        decode(body)
    assert (info.value.api_version, info.value.kind) == (
        "authentication.k8s.io/v1beta1",
        "SelfSubjectReview",
    )
    assert isinstance(info.value, ProtobufDecodeError)
    assert isinstance(info.value, ValueError)
    assert "send JSON" in str(info.value)
    assert peek_type(body) == ("authentication.k8s.io/v1beta1", "SelfSubjectReview")


@pytest.mark.parametrize(
    ("body", "attributes"),
    [
        (
            KUBECTL_CAN_I_CREATE,
            {
                "resourceAttributes": {
                    "namespace": "foo",
                    "verb": "create",
                    "group": "agent.wecode.io",
                    "resource": "ghosts",
                }
            },
        ),
        (
            KUBECTL_CAN_I_SUBRESOURCE,
            {
                "resourceAttributes": {
                    "namespace": "alice",
                    "verb": "update",
                    "group": "agent.wecode.io",
                    "resource": "tasks",
                    "subresource": "status",
                }
            },
        ),
        (
            KUBECTL_CAN_I_NAME,
            {
                "resourceAttributes": {
                    "namespace": "foo",
                    "verb": "delete",
                    "group": "agent.wecode.io",
                    "resource": "ghosts",
                    "name": "g1",
                }
            },
        ),
        (KUBECTL_CAN_I_NONRESOURCE, {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}),
    ],
)
def test_can_i(body: str, attributes: dict[str, Any]) -> None:
    assert decode(bytes.fromhex(body)) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": attributes,
        "status": {},
    }


def test_can_i_list() -> None:
    assert decode(bytes.fromhex(KUBECTL_CAN_I_LIST)) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "metadata": {},
        "spec": {"namespace": "foo"},
    }


def test_peek_type() -> None:
    assert peek_type(bytes.fromhex(KUBECTL_CREATE_NAMESPACE)) == ("v1", "Namespace")
    assert peek_type(bytes.fromhex(KUBECTL_CAN_I_CREATE)) == (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
    )


def test_accepts_bytearray_and_memoryview() -> None:
    body = bytes.fromhex(KUBECTL_CREATE_NAMESPACE)
    assert decode(bytearray(body)) == decode(memoryview(body)) == decode(body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (CONTENT_TYPE, True),
        ("application/vnd.kubernetes.protobuf; charset=binary", True),
        ("Application/Vnd.Kubernetes.Protobuf", True),
        ("application/vnd.kubernetes.protobuf;stream=watch", True),
        ("application/json", False),
        ("application/vnd.kubernetes.protobuf+json", False),
        ("", False),
        (None, False),
    ],
)
def test_is_protobuf(header: str | None, expected: bool) -> None:
    assert is_protobuf(header) is expected


# ---------------------------------------------------------------------------------------------
# Fields kubectl does not send but other client-go programs do


def test_namespace_with_every_metadata_field() -> None:
    time = ld(8, vi(1, 1_700_000_000) + vi(2, 123_456_789))  # nanoseconds are dropped
    owner = st(5, "v1") + st(1, "ConfigMap") + st(3, "cm") + st(4, "u-1") + vi(6, 1) + vi(7, 0)
    managed = (
        st(1, "kubectl")
        + st(2, "Update")
        + st(3, "v1")
        + ld(4, vi(1, 0))  # the Unix epoch is a real time, not the zero time
        + st(6, "FieldsV1")
        + ld(7, ld(1, b'{"f:metadata":{"f:labels":{".":{}}}}'))
    )
    metadata = (
        st(2, "team-")
        + st(3, "ignored-for-namespaces")
        + st(5, "")  # empty strings are omitted, as Go's omitempty does
        + vi(7, 3)
        + time
        + ld(9, b"")  # the zero time: an empty message
        + vi(10, 30)
        + entry(11, "team", st(2, "core"))
        + entry(11, "empty", st(2, ""))
        + entry(12, "note", st(2, "héllo ✓"))
        + ld(13, owner)
        + st(14, "kubernetes")
        + st(14, "example.com/cleanup")
        + ld(17, managed)
    )
    spec = st(1, "kubernetes")
    condition = st(1, "NamespaceDeletionContentFailure") + st(2, "False") + ld(4, b"")
    status = st(1, "Active") + ld(2, condition)
    body = envelope("v1", "Namespace", ld(1, metadata) + ld(2, spec) + ld(3, status))
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "generateName": "team-",
            "namespace": "ignored-for-namespaces",
            "generation": 3,
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionGracePeriodSeconds": 30,
            "labels": {"team": "core", "empty": ""},
            "annotations": {"note": "héllo ✓"},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "cm",
                    "uid": "u-1",
                    "controller": True,
                }
            ],
            "finalizers": ["kubernetes", "example.com/cleanup"],
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "1970-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}},
                }
            ],
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {
            "phase": "Active",
            "conditions": [{"type": "NamespaceDeletionContentFailure", "status": "False"}],
        },
    }


def test_a_repeated_map_key_keeps_the_last_value_and_unknown_fields_are_skipped() -> None:
    metadata = (
        st(1, "x")
        + entry(11, "k", st(2, "first"))
        + entry(11, "k", st(2, "last"))
        + st(99, "a field from a newer Kubernetes")
        + vi(100, 7)
    )
    body = envelope("v1", "Namespace", ld(1, metadata) + st(42, "unknown"))
    assert decode(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "x", "labels": {"k": "last"}},
    }


def test_self_subject_access_review_with_selectors_and_status() -> None:
    field_selector = st(1, "") + ld(
        2, st(1, "metadata.name") + st(2, "In") + st(3, "a") + st(3, "b")
    )
    label_selector = st(1, "team=core")
    attributes = (
        st(1, "ns")
        + st(2, "list")
        + st(3, "agent.wecode.io")
        + st(4, "v1")
        + st(5, "bots")
        + ld(8, field_selector)
        + ld(9, label_selector)
    )
    review_status = vi(1, 1) + st(2, "member") + st(3, "") + vi(4, 0)
    body = envelope(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        ld(1, b"") + ld(2, ld(1, attributes)) + ld(3, review_status),
    )
    assert decode(body) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {
            "resourceAttributes": {
                "namespace": "ns",
                "verb": "list",
                "group": "agent.wecode.io",
                "version": "v1",
                "resource": "bots",
                "fieldSelector": {
                    "requirements": [
                        {"key": "metadata.name", "operator": "In", "values": ["a", "b"]}
                    ]
                },
                "labelSelector": {"rawSelector": "team=core"},
            }
        },
        "status": {"allowed": True, "reason": "member"},
    }


def test_self_subject_review_with_user_info() -> None:
    user = (
        st(1, "alice")
        + st(2, "42")
        + st(3, "system:authenticated")
        + entry(4, "wegent.io/role", ld(2, st(1, "user") + st(1, "viewer")))
        + entry(4, "empty", ld(2, b""))
    )
    body = envelope("authentication.k8s.io/v1", "SelfSubjectReview", ld(2, ld(1, user)))
    assert decode(body) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "status": {
            "userInfo": {
                "username": "alice",
                "uid": "42",
                "groups": ["system:authenticated"],
                "extra": {"wegent.io/role": ["user", "viewer"], "empty": []},
            }
        },
    }


@pytest.mark.parametrize("api_version", ["v1", "meta.k8s.io/v1", "agent.wecode.io/v1"])
def test_delete_options_of_any_group(api_version: str) -> None:
    raw = (
        vi(1, 0)  # gracePeriodSeconds 0 is omitted like every zero scalar
        + ld(2, st(1, "uid-1") + st(2, "7"))
        + st(4, "Background")
        + st(5, "All")
    )
    assert decode(envelope(api_version, "DeleteOptions", raw)) == {
        "apiVersion": api_version,
        "kind": "DeleteOptions",
        "preconditions": {"uid": "uid-1", "resourceVersion": "7"},
        "propagationPolicy": "Background",
        "dryRun": ["All"],
    }


def test_negative_int64() -> None:
    body = envelope("v1", "DeleteOptions", vi(1, -5))
    assert decode(body)["gracePeriodSeconds"] == -5


def test_the_protobuf_content_type_inside_the_envelope_is_accepted() -> None:
    type_meta = st(1, "v1") + st(2, "Namespace")
    body = MAGIC + ld(1, type_meta) + ld(2, ld(1, st(1, "x"))) + st(4, CONTENT_TYPE)
    assert decode(body)["metadata"] == {"name": "x"}


# ---------------------------------------------------------------------------------------------
# Malformed bodies: always ProtobufDecodeError


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "must start with"),
        (b"k8s", "must start with"),
        (b'{"kind":"Namespace"}', "must start with"),
        (b"K8S\x00", "must start with"),
        (MAGIC, "no typeMeta"),
        (MAGIC + b"\x0a", "malformed"),  # a tag with no length
        (MAGIC + b"\x0a\xff", "malformed"),  # a truncated varint
        (MAGIC + b"\x0a\x05\x0a\x02v1", "malformed"),  # a length past the end
        (MAGIC + b"\x0f", "malformed"),  # wire type 7 does not exist
        (MAGIC + b"\x00\x00", "malformed"),  # field number 0
        (MAGIC + b"\x0b", "malformed"),  # a group that never ends
        (MAGIC + b"\x0c", "malformed"),  # an end-group with no start
        (
            MAGIC + b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
            "malformed",
        ),  # 11-byte varint
        (MAGIC + b"\x08\x01", "no typeMeta"),  # typeMeta sent as a varint: an unknown field
        (MAGIC + ld(1, st(1, "v1")), "lacks apiVersion or kind"),
        (MAGIC + ld(1, st(2, "Namespace")), "lacks apiVersion or kind"),
        (MAGIC + ld(1, ld(1, b"\xff\xfe") + st(2, "Namespace")), "UTF-8"),
        (envelope("v1", "Namespace", b"\x0a\x05\x0a"), "malformed protobuf Namespace"),
        (envelope("v1", "Namespace", ld(1, ld(1, b"\xc3\x28"))), "UTF-8"),
        (envelope("v1", "Namespace", ld(1, entry(11, "k", ld(2, b"\xff")))), "UTF-8"),
        (envelope("v1", "Namespace", ld(1, ld(11, ld(1, b"\xe2\x82") + st(2, "v")))), "UTF-8"),
        (envelope("v1", "Namespace", ld(1, ld(8, vi(1, 10**15)))), "out of range"),
        (envelope("v1", "Namespace", ld(1, ld(8, vi(1, -(10**15))))), "out of range"),
        (envelope("v1", "Namespace", ld(1, ld(17, ld(7, ld(1, b"{not json"))))), "not valid JSON"),
        (
            envelope("v1", "Namespace", ld(1, ld(17, ld(7, ld(1, b"[" * 100_000))))),
            "not valid JSON",
        ),
        (envelope("v1", "Namespace", b"", extra=st(3, "gzip")), "contentEncoding"),
        (envelope("v1", "Namespace", b"", extra=st(4, "application/json")), "contentType"),
        (envelope("v1", "Pod", b""), "not supported"),
        (envelope("v2", "Namespace", b""), "not supported"),
    ],
)
def test_malformed(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=message):
        decode(body)


def test_a_body_that_is_not_bytes() -> None:
    with pytest.raises(ProtobufDecodeError, match="must be bytes"):
        decode("k8s\x00")  # type: ignore[arg-type]


def test_deep_nesting_of_unknown_groups_is_refused_not_a_crash() -> None:
    depth = 10_000
    nested = b"\x0b" * depth + b"\x0c" * depth  # start-group/end-group of field 1, nested
    with pytest.raises(ProtobufDecodeError):
        decode(envelope("v1", "Namespace", ld(1, nested)))


def test_mutations_of_real_bodies_only_ever_raise_the_one_error() -> None:
    """Truncations and random byte changes of every captured body: a dict or the one error."""
    rng = random.Random(20261129)
    outcomes = {"decoded": 0, "refused": 0}
    for fixture in KUBECTL_FIXTURES:
        original = bytes.fromhex(fixture)
        candidates = [original[:n] for n in range(len(original))]
        for _ in range(300):
            mutated = bytearray(original)
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(MAGIC), len(mutated))
                mutated[position] = rng.randrange(256)
            if rng.random() < 0.2:
                mutated.insert(rng.randrange(len(MAGIC), len(mutated)), rng.randrange(256))
            candidates.append(bytes(mutated))
        for candidate in candidates:
            try:
                result = decode(candidate)
            except ProtobufDecodeError:
                outcomes["refused"] += 1
            else:
                assert isinstance(result, dict)
                assert isinstance(result["apiVersion"], str)
                assert isinstance(result["kind"], str)
                outcomes["decoded"] += 1
    assert outcomes["refused"] > 0
    assert outcomes["decoded"] > 0
