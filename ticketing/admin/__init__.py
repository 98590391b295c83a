"""Administration: routing rules (admins) and duty rosters (admins and supervisors)."""
