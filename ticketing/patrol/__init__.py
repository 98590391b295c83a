"""Grid patrol (巡查) and WeChat-group quick entry (收单)."""
