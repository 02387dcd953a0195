"""Adapters to the outside world: Twilio, email, Rasa, back-office webhooks."""
