"""Operations: the admin's view of queues, outbox, scheduler and residents' messages; health checks."""
