"""Entry point of the atls-tdx plugin: registration hooks only."""
