"""Relay: webhook delivery on PostgreSQL alone."""

__version__ = "0.1.0"
