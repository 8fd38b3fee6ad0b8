"""Ingest service: raw device/API input -> validated, normalised events."""
