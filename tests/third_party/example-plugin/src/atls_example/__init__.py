"""A toy third-party atls plugin: HMAC "evidence" (insecure, an example only)."""

__version__ = "0.1.0"
