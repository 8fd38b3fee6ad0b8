"""Routers by resource: data (ingest), assets, monitoring, system (health)."""
