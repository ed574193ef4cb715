"""Entry point of the atls-gramine plugin: registration hooks only."""
