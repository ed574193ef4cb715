"""An ITA API answer nested past the JSON parser's limit is a malformed answer, not a crash."""

from __future__ import annotations

import pytest

from atls_core.errors import MalformedEvidence
from atls_core.secret import Secret
from atls_core.testing.httpd import ScriptedServer
from atls_ita.client import ItaClient


def test_a_deeply_nested_answer_is_malformed() -> None:
    with ScriptedServer(body=b"[" * 100_000 + b"]" * 100_000) as service:
        client = ItaClient(api_url=service.url, api_key=Secret("key", "test"), timeout=10)
        with pytest.raises(MalformedEvidence) as info:
            client.nonce()
    assert info.value.check == "ita.api.response"
