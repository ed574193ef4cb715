"""Test fixture: importing this module fails, as a plugin with a bad dependency would."""

raise RuntimeError("atls-broken fails at import on purpose")
