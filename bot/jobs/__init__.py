"""The long-running jobs `zoufang serve` and `zoufang worker` run: the outbox senders and the scheduler."""
