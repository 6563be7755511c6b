"""The store's HTTP API (OpenAPI at /openapi.json) and its NGSI v2 view, with who may read what."""
