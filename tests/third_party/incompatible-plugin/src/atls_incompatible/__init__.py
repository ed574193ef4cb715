"""Test fixture: a plugin written for a future atls-core (>=99)."""
