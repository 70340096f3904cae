"""Operating the server: Prometheus metrics, structured logs with a request id, OpenTelemetry traces.

Imports nothing of nextslot but storage (the database-backed gauges), so every layer may record a metric.
"""
