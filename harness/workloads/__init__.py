"""Echo workloads to migrate: a client sends numbered messages, a server answers each one.

Each runs as ``python -m harness.workloads.<name>`` and writes one JSON line per event (see
``events``), so the harness measures what the client saw instead of guessing.
"""
