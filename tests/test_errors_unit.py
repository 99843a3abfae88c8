"""The Kubernetes wording of 422 messages."""

from wegent.errors import Cause, invalid


def test_one_cause_is_appended() -> None:
    error = invalid(
        "Bot", "b1", [Cause("FieldValueNotFound", 'Ghost "g9" not found', "spec.ghostRef")]
    )
    assert error.message == 'Bot "b1" is invalid: spec.ghostRef: Ghost "g9" not found'
    assert (error.code, error.reason, error.kind, error.name) == (422, "Invalid", "Bot", "b1")


def test_several_causes_are_bracketed() -> None:
    causes = [Cause("FieldValueRequired", "Required value", "spec.a"), Cause("X", "bad")]
    error = invalid(None, None, causes)
    assert error.message == "the object is invalid: [spec.a: Required value, bad]"
