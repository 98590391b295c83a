"""Machine-facing HTTP APIs under /api/v1 (JSON, no cookies, no CSRF)."""
