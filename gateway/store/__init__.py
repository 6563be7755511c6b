"""The city store: MQTT ingest, SQLite/PostgreSQL storage and retention (docs/store.md)."""
