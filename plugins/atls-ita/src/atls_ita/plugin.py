"""Entry point of the atls-ita plugin: registration hooks only."""
