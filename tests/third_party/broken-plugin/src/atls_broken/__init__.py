"""Test fixture: the package imports fine, its plugin module does not."""
