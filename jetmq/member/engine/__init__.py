"""The execution engine of a member: queues, tasklets, routing, the data plane."""
