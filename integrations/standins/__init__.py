"""Local stand-ins of outside services, for development and tests (off unless asked for).

- :mod:`.twilio`: Twilio's Messaging REST API and webhooks, with the ``/dev/phone`` page.
"""
