"""Arbitrary recipes and ``--set`` overrides end in a validation error (exit code 2 and an
``error:`` line), never in a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.cli import main
from tests.helpers import RECIPES

TINY = json.loads((RECIPES / "tiny.json").read_text())
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*prefix, i))
    return found


TINY_PATHS = paths(TINY)[1:]


def replaced(document: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copy


def check_validate(argv: list[str], capsys) -> None:
    code = main(["validate", *argv])
    captured = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert captured.err.startswith("error: "), captured.err


@FUZZ
@given(recipe=json_values)
def test_arbitrary_json_is_rejected_cleanly(tmp_path: Path, capsys, recipe):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(recipe))
    check_validate([str(path)], capsys)


@FUZZ
@given(where=st.sampled_from(TINY_PATHS), value=json_values)
def test_the_tiny_recipe_with_any_subtree_replaced_is_rejected_cleanly(tmp_path: Path, capsys, where, value):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(replaced(TINY, where, value)))
    check_validate([str(path)], capsys)


override_keys = st.one_of(
    st.sampled_from([".".join(map(str, p)) for p in TINY_PATHS]),
    st.text(alphabet="abcdefgimnorstxy_.0123456789", max_size=24),
)
override_values = st.one_of(json_values.map(json.dumps), st.text(max_size=20))


@FUZZ
@given(overrides=st.lists(st.tuples(override_keys, override_values).map("=".join), min_size=1, max_size=3))
def test_arbitrary_set_overrides_are_rejected_cleanly(capsys, overrides):
    check_validate([str(RECIPES / "tiny.json"), *[a for o in overrides for a in ("--set", o)]], capsys)


# --- byte-level recipe files and hostile values (issue 20) ------------------------------------

TINY_BYTES = (RECIPES / "tiny.json").read_bytes()
HOSTILE_FILES = [
    b'{"description": "\xff\xfe bad utf-8"}',  # invalid UTF-8
    b"[" * 2000 + b"]" * 2000,  # nested 2000 deep
    b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"train": {"steps": ' + b"9" * 5000 + b"}}",  # an integer past Python's 4300-digit limit
    b'{"extends": "' + b"a" * 5000 + b'"}',  # a name too long for the filesystem
    b'{"extends": "' + b"/".join([b"b" * 255] * 40) + b'"}',
    b'{"extends": "x\\u0000y"}',  # a NUL byte in a path
    b"\xef\xbb\xbf" + TINY_BYTES,  # a UTF-8 byte-order mark
    b"",
    b"\x00" * 64,
]


def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for where, byte in edits:
        out[where % len(out)] = byte
    return bytes(out)


def check_file(tmp_path: Path, capsys, content: bytes, *extra: str) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(content)
    check_validate([str(path), *extra], capsys)


def test_hostile_recipe_files_are_rejected_cleanly(tmp_path: Path, capsys):
    for content in HOSTILE_FILES:
        check_file(tmp_path, capsys, content)


@FUZZ
@given(content=st.binary(max_size=512))
def test_arbitrary_bytes_as_a_recipe_are_rejected_cleanly(tmp_path: Path, capsys, content):
    check_file(tmp_path, capsys, content)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=6))
def test_the_tiny_recipe_with_bytes_changed_is_rejected_cleanly(tmp_path: Path, capsys, edits):
    check_file(tmp_path, capsys, mutate(TINY_BYTES, edits))


hostile_values = st.one_of(
    st.sampled_from(["[" * 2000, "[" * 2000 + "]" * 2000, "9" * 5000, "-" + "1" * 4400, "1e999999", "NaN",
                     "Infinity", '"\\ud800"', '{"a": ' * 300]),
    st.text(max_size=30),
)
hostile_keys = st.one_of(
    override_keys,
    st.sampled_from(["objectives.²", "objectives.٣", "objectives.-1", "objectives.99999999999999999999",
                     "." * 5, "a" + ".a" * 3000, "deepspeed.config.checkpoint.load_universal"]),
    st.text(max_size=12),
)


@FUZZ
@given(overrides=st.lists(st.tuples(hostile_keys, hostile_values).map("=".join), min_size=1, max_size=3))
def test_hostile_set_overrides_are_rejected_cleanly(capsys, overrides):
    check_validate([str(RECIPES / "tiny.json"), *[a for o in overrides for a in ("--set", o)]], capsys)
