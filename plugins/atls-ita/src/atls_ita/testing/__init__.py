"""Test helpers shipped with atls-ita: a stand-in ITA service and its PKI (TEST ONLY)."""
