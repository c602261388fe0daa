"""Business rules as plain async functions (no HTTP objects)."""
