"""Test fixture: a plugin that claims the example plugin's certificate OID."""
