"""The hub's HTTP API under /api/: customers, catalogue, orders; JSON in and out."""
