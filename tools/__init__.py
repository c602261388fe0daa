"""Maintenance scripts (locking, auditing); not part of the service."""
