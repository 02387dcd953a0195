"""Async repositories over the contact repository's tables; each function takes an open session."""
