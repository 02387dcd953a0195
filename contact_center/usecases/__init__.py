"""The hub's use cases: what happens to conversations, in the contact centre's words.

One module per job (inbound, outbound, offers, replies, transfer_close, bot_turns, supervision, router,
rebuild), each a set of functions of the shared context :class:`~contact_center.usecases.context.Hub`.
They validate, write through the repository port (one transaction per write), then publish through
the notifier port. An import-linter contract keeps SQL, Socket.IO, aiohttp and the providers out.
"""
