"""Security building blocks: tokens, passwords, authentication, limits, CORS, headers."""
