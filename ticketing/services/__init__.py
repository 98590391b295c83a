"""Business rules. No Flask request objects in here; time is passed in as `now`."""
