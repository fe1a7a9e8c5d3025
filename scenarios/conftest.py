"""`pytest scenarios/` runs the scenario files here. The atlas's own (atlas/, every IPC
mechanism) run in full in the nightly job (`criu-harness atlas`, `matrix`); the test suite runs
a sample of them (tests/integration/test_atlas.py). `pytest scenarios/atlas` runs them all."""

collect_ignore = ["atlas"]
