"""Local stand-ins of outside services, for development and tests (off unless asked for).

- :mod:`.twilio`: Twilio's Messaging and Voice REST APIs and webhooks (:mod:`.voice`, :mod:`.twiml`), with
  the ``/dev/phone`` page that texts and calls the shop.
"""
