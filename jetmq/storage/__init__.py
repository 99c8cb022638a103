"""The snapshot store and durable files, shared by the master (which commits) and members
(which write and read their own state)."""
