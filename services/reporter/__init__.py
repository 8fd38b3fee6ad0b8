"""Reporter service: report documents on request (``cmd/report``)."""
