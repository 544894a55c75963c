"""Schema evolution (docs/idl.md): old readers and new writers, and the other way round."""

from __future__ import annotations

import msgpack
import pytest
from generated_modules import build_idl

from rpc.calls.schema import ValidationError

OLD = """
enum Level { LOW = 1, HIGH = 2 }
union Payload { 1: string text; }
struct Profile {
    1: string name;
    2: i32 age;
}
service Directory version 1 {
    1: Profile lookup(1: string name);
}
"""

# Version 2: a new optional field, a new field with a default, a removed field (2: age,
# never reused), a new enum value, a new union member, a new optional parameter.
NEW = """
enum Level { LOW = 1, HIGH = 2, EXTREME = 3 }
union Payload { 1: string text; 2: bytes blob; }
struct Profile {
    1: string name;
    3: optional string email;
    4: Level level = Level.LOW;
}
service Directory version 1 {
    1: Profile lookup(1: string name, 2: optional bool exact);
}
"""

old = build_idl({"profile_v1.idl": OLD})["profile_v1"]
new = build_idl({"profile_v2.idl": NEW})["profile_v2"]


def wire(value: object) -> object:
    return msgpack.unpackb(msgpack.packb(value), raw=False, strict_map_key=False)


def test_new_reader_fills_defaults_and_ignores_removed_fields() -> None:
    written = wire(old._T_Profile.encode(old.Profile(name="ann", age=41)))
    read = new._T_Profile.decode(written)
    assert read == new.Profile(name="ann", email=None, level=new.Level.LOW)


def test_old_reader_ignores_new_fields() -> None:
    written = wire(new._T_Profile.encode(
        new.Profile(name="bob", email="b@example.org", level=new.Level.HIGH)))
    with pytest.raises(ValidationError, match=r"\.age: required field 2 is missing"):
        # The old reader still requires the field the new writer removed: removing a
        # required field breaks old readers, as documented.
        old._T_Profile.decode(written)
    assert isinstance(written, dict)
    assert old._T_Profile.decode({**written, 2: 30}) == old.Profile(name="bob", age=30)


def test_new_enum_values_and_union_members_are_rejected_by_old_readers() -> None:
    assert old._T_Level.decode(wire(new._T_Level.encode(new.Level.HIGH))) is old.Level.HIGH
    with pytest.raises(ValidationError, match="3 is not a value of enum Level"):
        old._T_Level.decode(wire(new._T_Level.encode(new.Level.EXTREME)))
    text = wire(new._T_Payload.encode(new.Payload(text="hi")))
    assert old._T_Payload.decode(text) == old.Payload(text="hi")
    with pytest.raises(ValidationError, match="unknown member 2 of union Payload"):
        old._T_Payload.decode(wire(new._T_Payload.encode(new.Payload(blob=b"x"))))


def test_new_optional_parameter_is_compatible_both_ways() -> None:
    old_lookup = old._M_Directory_v1_lookup
    new_lookup = new._M_Directory_v1_lookup
    assert old_lookup.number == new_lookup.number
    assert new_lookup.decode_args(wire(old_lookup.encode_args(("ann",)))) == ("ann", None)
    assert old_lookup.decode_args(wire(new_lookup.encode_args(("ann", True)))) == ("ann",)
