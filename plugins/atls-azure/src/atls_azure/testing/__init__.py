"""Test helpers shipped with atls-azure (a stand-in MAA service)."""
