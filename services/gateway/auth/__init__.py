"""Identity and roles of the gateway's API: the auth store (users, hashed API keys and sessions in
SQLite), the FastAPI guards every route declares, and the first-start bootstrap."""
