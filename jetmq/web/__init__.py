"""The master's HTTP server: the dashboard, its JSON API and Prometheus's ``/metrics``.

It runs in a thread of the master process and is a client of the master like `jet`:
it asks over its own socket, with the cluster key, what `jet list-jobs`, `jet describe`
and `jet cluster` ask (see docs/operations.md, "HTTP API"). This package imports nothing
at load time: `jet` loads ``documents`` alone.
"""
