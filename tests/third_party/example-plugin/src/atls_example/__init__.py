"""A toy third-party atls plugin: HMAC "evidence" (insecure, an example only).

Its version lives in the distribution's metadata only (pyproject.toml): atls
reads it from there, so there is no second copy here to drift.
"""
