"""The contact hub: conversations, routing, presence, realtime, the aiohttp app and the CLI."""
