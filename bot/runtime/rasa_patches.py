"""One performance fix to Rasa 3.6, applied when Rasa imports ``runtime`` (endpoints.yml names its tracker store).

``RemoteAction._validate_action_result`` checks every answer of the action server with
``jsonschema.validate(result, schema)``, which first validates the *schema* against JSON Schema's
meta-schema, on every call; the profile of a bot turn that runs a custom action (a price, a stock level)
showed that at about a sixth of Rasa's time in such turns. The schema is a constant of Rasa's, so the
replacement builds its validator once and checks the answer only, raising the same ``ValidationError``
with the same added text.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.actions.action import RemoteAction

_validator: Optional[Any] = None
_original = RemoteAction._validate_action_result


def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    global _validator
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    if _validator is None:
        schema = RemoteAction.action_response_format_spec()
        _validator = validator_for(schema)(schema)
    error = best_match(_validator.iter_errors(result))
    if error is None:
        return True
    return bool(_original(self, result))  # an answer that does not fit: Rasa's own error, with its message


def apply() -> None:
    """Install the cached validation (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
