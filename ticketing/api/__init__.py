"""Machine-facing HTTP APIs: the staff API and county-centre orders under /api/v1, Open311 under /open311 (no cookies, no CSRF)."""
