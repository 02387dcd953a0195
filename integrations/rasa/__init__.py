"""The hub's connector to the Rasa ordering bot (its REST channel), see docs/subsystems/bot.md."""
