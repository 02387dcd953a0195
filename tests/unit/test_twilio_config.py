"""The Twilio settings: what turns the channels on, what is required, and errors that name the variable."""

from __future__ import annotations

import pytest

from integrations.twilio.config import (
    DEFAULT_MEDIA_MAX_BYTES,
    TWILIO_API,
    TwilioConfig,
    TwilioConfigError,
    channel_for,
)

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "s3cret-auth-token-value"
GOOD = {
    "TWILIO_ACCOUNT_SID": SID,
    "TWILIO_AUTH_TOKEN": TOKEN,
    "PUBLIC_BASE_URL": "https://hub.example.com/",
    "TWILIO_NUMBERS": "+15005550006=support, whatsapp:+14155238886=sales",
}


def config(**changes: str) -> TwilioConfig:
    env = {**GOOD, **changes}
    result = TwilioConfig.from_env({k: v for k, v in env.items() if v is not None})
    assert result is not None
    return result


def error(**changes: str) -> str:
    with pytest.raises(TwilioConfigError) as caught:
        TwilioConfig.from_env({k: v for k, v in {**GOOD, **changes}.items() if v != "<unset>"})
    return str(caught.value)


def test_no_twilio_setting_means_no_twilio() -> None:
    assert TwilioConfig.from_env({}) is None
    assert TwilioConfig.from_env({"PUBLIC_BASE_URL": "https://hub.example.com", "MEDIA_MAX_BYTES": "100"}) is None
    assert TwilioConfig.from_env({"TWILIO_NUMBERS": "  "}) is None


def test_a_full_setting() -> None:
    cfg = config()
    assert cfg.account_sid == SID and cfg.auth_token == TOKEN
    assert cfg.api_base_url == TWILIO_API
    assert cfg.public_base_url == "https://hub.example.com"
    assert cfg.status_callback_url == "https://hub.example.com/webhooks/twilio/messaging/status"
    assert cfg.inbound_url == "https://hub.example.com/webhooks/twilio/messaging"
    assert [(n.address, n.channel, n.queue) for n in cfg.numbers] == [
        ("+15005550006", "sms", "support"), ("whatsapp:+14155238886", "whatsapp", "sales")]
    assert cfg.send_rate == 1.0 and cfg.media_max_bytes == DEFAULT_MEDIA_MAX_BYTES == 5 * 1024 * 1024


def test_queues_and_channels_of_our_numbers() -> None:
    cfg = config(TWILIO_NUMBERS="+1 (500) 555-0006=support,WhatsApp:+14155238886,+12025550143=vip")
    assert cfg.queue_for("+15005550006") == "support"
    assert cfg.queue_for("whatsapp:+14155238886") is None  # no queue given: the channel's default
    assert cfg.queue_for("+14155238886") is None  # that number is ours on WhatsApp only
    assert cfg.number("+14155238886") is None
    assert cfg.queue_for("+12025550143") == "vip"
    assert cfg.queue_for("not a number") is None
    assert cfg.channel_for("whatsapp:+14155238886") == "whatsapp" == channel_for("WHATSAPP:+1")
    assert cfg.channel_for("+15005550006") == "sms"
    assert cfg.sender_for("whatsapp") is not None and cfg.sender_for("whatsapp").address == "whatsapp:+14155238886"  # type: ignore[union-attr]


def test_the_auth_token_is_never_shown() -> None:
    cfg = config()
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg)
    assert SID in repr(cfg)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"TWILIO_NUMBERS": "+1555"}, "TWILIO_NUMBERS: '+1555' is not a valid phone number"),
        ({"TWILIO_NUMBERS": "+15005550006=sup port"}, "TWILIO_NUMBERS: 'sup port' (for +15005550006) is not a queue name"),
        ({"TWILIO_NUMBERS": "+15005550006,+1 500 555 0006"}, "TWILIO_NUMBERS: +15005550006 is listed twice"),
        ({"TWILIO_NUMBERS": ",,"}, "TWILIO_NUMBERS: no number given"),
        ({"TWILIO_AUTH_TOKEN": "<unset>", "TWILIO_ACCOUNT_SID": "<unset>"},
         "TWILIO_ACCOUNT_SID is required when TWILIO_NUMBERS is set"),
        ({"TWILIO_AUTH_TOKEN": "<unset>"}, "TWILIO_AUTH_TOKEN is required when TWILIO_ACCOUNT_SID is set"),
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID: 'AC123' is not an account SID"),
        ({"PUBLIC_BASE_URL": "<unset>"}, "PUBLIC_BASE_URL is required when TWILIO_ACCOUNT_SID is set"),
        ({"PUBLIC_BASE_URL": "hub.example.com"}, "PUBLIC_BASE_URL: 'hub.example.com' is not an http(s) URL"),
        ({"TWILIO_API_BASE_URL": "ftp://x"}, "TWILIO_API_BASE_URL: 'ftp://x' is not an http(s) URL"),
        ({"TWILIO_SEND_RATE": "fast"}, "TWILIO_SEND_RATE: 'fast' is not a number"),
        ({"TWILIO_SEND_RATE": "0"}, "TWILIO_SEND_RATE: '0' must be above 0"),
        ({"MEDIA_MAX_BYTES": "5MB"}, "MEDIA_MAX_BYTES: '5MB' is not a whole number of bytes"),
        ({"MEDIA_MAX_BYTES": "-1"}, "MEDIA_MAX_BYTES: '-1' must be above 0"),
    ],
)
def test_errors_name_the_variable(changes: dict[str, str], message: str) -> None:
    assert error(**changes).startswith(message)


def test_only_numbers_set_asks_for_the_token_because_of_the_numbers() -> None:
    with pytest.raises(TwilioConfigError, match="^TWILIO_ACCOUNT_SID is required when TWILIO_NUMBERS is set$"):
        TwilioConfig.from_env({"TWILIO_NUMBERS": "+15005550006"})
    env = {"TWILIO_NUMBERS": "+15005550006", "TWILIO_ACCOUNT_SID": SID}
    with pytest.raises(TwilioConfigError, match="^TWILIO_AUTH_TOKEN is required when TWILIO_ACCOUNT_SID is set$"):
        TwilioConfig.from_env(env)


def test_the_stand_in_base_url_rate_and_media_limit() -> None:
    cfg = config(TWILIO_API_BASE_URL="http://127.0.0.1:8080/standin/twilio/", TWILIO_SEND_RATE="2.5", MEDIA_MAX_BYTES="1000")
    assert cfg.api_base_url == "http://127.0.0.1:8080/standin/twilio"
    assert cfg.send_rate == 2.5 and cfg.media_max_bytes == 1000


def test_numbers_follow_the_default_region() -> None:
    cfg = config(TWILIO_NUMBERS="06 12 34 56 78=fr", DEFAULT_PHONE_REGION="fr")
    assert cfg.numbers[0].address == "+33612345678"


def test_the_phones_voice_settings_reach_the_adapter_from_the_environment() -> None:
    """VOICE_* (answer deadline, hold music, callback offer, voice) pass through Settings to the phone adapter."""
    from contact_center.settings import Settings
    from integrations.twilio.voice import VoiceSettings

    settings = Settings.from_env({"VOICE_ANSWER_DEADLINE": "2.5", "VOICE_LANGUAGE": "en-GB", "UNRELATED": "x"})
    assert settings.extra["VOICE_ANSWER_DEADLINE"] == "2.5" and "UNRELATED" not in settings.extra
    voice = VoiceSettings.from_env(settings.extra)
    assert voice.answer_deadline == 2.5 and voice.language == "en-GB"
