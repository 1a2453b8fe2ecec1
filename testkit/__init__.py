"""Support shared by tests, benchmarks and tools: tiny random models, attribution contexts, a dashboard server.

Not installed with the package; found through the repository root (pytest's `pythonpath = ["."]`).
"""
