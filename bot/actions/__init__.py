"""Custom actions of the ordering bot, served by `rasa run actions` (rasa-sdk) from `.venv-rasa`."""
