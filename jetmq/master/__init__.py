"""The master process: membership, member processes, job coordination and snapshots."""
