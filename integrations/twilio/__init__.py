"""Twilio Programmable Messaging (SMS and WhatsApp) for the hub: see docs/subsystems/sms-whatsapp.md.

- :mod:`.config` reads the settings (``TWILIO_*``, ``PUBLIC_BASE_URL``, ``MEDIA_MAX_BYTES``);
- :mod:`.signature` checks ``X-Twilio-Signature``;
- :mod:`.rest` sends messages and downloads media through Twilio's REST API;
- :mod:`.messaging` turns Twilio's webhooks into the core's inbound events and delivers its replies.
"""
