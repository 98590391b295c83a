"""Background work: the queues, the jobs, the outbox relay and the scheduler."""
