"""Bundled models (package data)."""
