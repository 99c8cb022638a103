"""The master process: membership, member processes, and (later) job coordination."""
