"""Pydantic request/response models (Create / Update / Public split per resource)."""
