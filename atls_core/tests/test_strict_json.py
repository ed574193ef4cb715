"""JSON objects that name a member twice are refused, whichever copy a reader would keep."""

from __future__ import annotations

import pytest

from atls_core import strict_json


def test_unique_names_load_as_json_does() -> None:
    text = '{"a": [1, {"b": null}], "c": "d"}'
    assert strict_json.loads(text) == {"a": [1, {"b": None}], "c": "d"}


@pytest.mark.parametrize("text", ['{"a": 1, "a": 1}', '[{"x": {"b": 1, "b": 2}}]'])
def test_a_repeated_name_is_refused_and_named(text: str) -> None:
    with pytest.raises(strict_json.RepeatedName) as info:
        strict_json.loads(text.encode())
    assert isinstance(info.value, ValueError)
    assert info.value.name in ("a", "b")
