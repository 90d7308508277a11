"""Monitoring: component and resource health, metrics history, alerts."""
