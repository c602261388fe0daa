"""Portcullis: a secure-by-default asynchronous JSON API service."""

from .app import create_app

__all__ = ["create_app"]
