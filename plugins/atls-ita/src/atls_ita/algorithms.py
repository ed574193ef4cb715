"""The token signing algorithms Intel Trust Authority uses (settings and verifier share them)."""

from __future__ import annotations

__all__ = ["ALGORITHMS"]

ALGORITHMS = ("PS384", "RS256")
"""What ITA signs tokens with; a token header naming anything else is refused."""
