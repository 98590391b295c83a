"""The daily ledgers on screen: the supervisors' dashboard, a grid's day, exports."""
