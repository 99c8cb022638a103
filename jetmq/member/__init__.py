"""Member processes: the master link, the data plane and job execution."""
