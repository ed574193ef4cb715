"""Entry point of the atls-azure plugin: registration hooks only."""
