"""State store adapters: in-process (:mod:`.memory`) and shared through Redis (:mod:`.redis_store`).

Import the adapter you need from its module; this package does not import Redis by itself.
"""
