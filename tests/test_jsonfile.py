"""The one reader of poseguide's versioned JSON files: every failure is one line naming the file."""

import json

import pytest

from poseguide.jsonfile import read_versioned_json


class Oops(ValueError):
    pass


def _read(path, label=None):
    return read_versioned_json(path, "poseguide-thing", 2, "thing file", Oops, label)


def test_reads_a_good_file(tmp_path):
    path = tmp_path / "thing.json"
    path.write_text(json.dumps({"format": "poseguide-thing", "version": 2, "x": [1, 2]}))
    assert _read(path)["x"] == [1, 2]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"format": "poseguide-thing", "vers', "thing.json: not valid JSON"),
        ("[1, 2]", "thing.json: not a poseguide thing file (format should be 'poseguide-thing')"),
        ('{"format": "other", "version": 2}', "not a poseguide thing file"),
        ('{"format": "poseguide-thing", "version": 3}', "thing.json: thing file version 3; this poseguide reads version 2"),
        ('{"format": "poseguide-thing"}', "thing file version None"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "thing.json"
    path.write_text(text)
    with pytest.raises(Oops) as info:
        _read(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_binary_garbage_and_label(tmp_path):
    path = tmp_path / "thing.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(Oops, match=r"^--compare x: not valid JSON"):
        _read(path, label="--compare x")


def test_a_directory_is_unreadable_not_a_crash(tmp_path):
    with pytest.raises(Oops, match="unreadable"):
        _read(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),
        ('{"format": "poseguide-thing", "version": ' + "9" * 5000 + "}", "not valid JSON (a number too long)"),
    ],
)
def test_deep_nesting_and_endless_numbers_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "thing.json"
    path.write_text(text)
    with pytest.raises(Oops) as info:
        _read(path)
    assert str(info.value) == f"{path}: {message}"
