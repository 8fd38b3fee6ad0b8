"""Gateway: the REST API (FastAPI). It publishes to MQTT and reads the store; it never calls services."""
