"""The phone's IVR as pure functions: the menu by keypad and by voice, a person at any time, order numbers
typed or said, speech normalised for the bot, long text split for <Say>, numbered choices spoken and picked,
and the sentences of a call."""

from __future__ import annotations

from datetime import date

import pytest

from contact_center.domain.channels import numbered_choices
from integrations.twilio import ivr
from integrations.twilio.ivr import Heard, Mode


# --- the menu ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digits, speech, heard, bot_text",
    [
        ("1", "", Heard.ORDER, "/order_product"),
        ("2", "", Heard.TRACK, "/track_order"),
        ("", "Order.", Heard.ORDER, "/order_product"),
        ("", "I want to order", Heard.ORDER, "/order_product"),
        ("", "Place an order, please.", Heard.ORDER, "/order_product"),
        ("", "Track.", Heard.TRACK, "/track_order"),
        ("", "Track my order.", Heard.TRACK, "/track_order"),
        ("", "Where is my order?", Heard.TRACK, "/track_order"),
        ("5", "", Heard.INVALID, None),
        ("*", "", Heard.INVALID, None),
    ],
)
def test_the_menu_by_keypad_and_by_voice(digits: str, speech: str, heard: Heard, bot_text: str | None) -> None:
    meaning = ivr.interpret(digits, speech, Mode.MENU)
    assert meaning.heard is heard and meaning.bot_text == bot_text
    assert meaning.text == (digits or speech)


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize(
    "digits, speech",
    [("0", ""), ("", "Agent."), ("", "agent please"), ("", "A real person."), ("", "Someone."),
     ("", "Can I speak to someone?"), ("", "I'd like to talk to a human being please"), ("", "person"),
     ("", "Could you put me through to customer service")],
)
def test_zero_or_asking_for_a_person_works_at_any_time(mode: Mode, digits: str, speech: str) -> None:
    assert ivr.interpret(digits, speech, mode, ["Small", "Large"]).heard is Heard.AGENT


@pytest.mark.parametrize(
    "speech", ["can someone tell me the price of the blue mug", "my person size is large", "the agent's order was wrong, I want a refund for it"]
)
def test_a_sentence_that_only_mentions_someone_is_for_the_bot(speech: str) -> None:
    assert ivr.interpret("", speech, Mode.BOT).heard is Heard.SPEECH


def test_silence_is_silence_everywhere() -> None:
    for mode in Mode:
        assert ivr.interpret("", "", mode).heard is Heard.SILENCE
        assert ivr.interpret("", "   ", mode).heard is Heard.SILENCE


def test_an_order_number_typed_on_the_keypad_and_ended_with_hash() -> None:
    # Twilio leaves the finishing '#' out of Digits; a stray one is ignored as well
    for digits in ("10234", "10234#"):
        meaning = ivr.interpret(digits, "", Mode.MENU)
        assert meaning.heard is Heard.ORDER_NUMBER and meaning.order_id == "10234"
        assert meaning.bot_text == '/track_order{"order_id": "10234"}' and meaning.text == "10234"


@pytest.mark.parametrize(
    "speech", ["One oh two three four.", "ten thousand two hundred thirty four", "1 0 2 3 4", "Where is my order 10234?",
               "track order one zero two three four", "10234"],
)
def test_an_order_number_said_in_the_menu(speech: str) -> None:
    meaning = ivr.interpret("", speech, Mode.MENU)
    assert meaning.heard is Heard.ORDER_NUMBER and meaning.order_id == "10234"
    assert meaning.text == speech  # what the caller said is kept as their message


def test_free_speech_goes_to_the_bot_as_said() -> None:
    meaning = ivr.interpret("", "I'd like two large red t-shirts", Mode.MENU)
    assert meaning.heard is Heard.SPEECH and meaning.text == "I'd like two large red t-shirts"
    assert meaning.bot_text is None  # nothing to normalise: the bot gets the words
    long_order = ivr.interpret("", "I would like to order two large red t-shirts please", Mode.MENU)
    assert long_order.heard is Heard.SPEECH  # a whole sentence: the bot reads it, not the menu


def test_keys_during_a_bot_turn_are_for_the_bot() -> None:
    # the bot may have asked for a quantity or a phone number: typed digits are its answer
    for digits in ("3", "12", "4155550100"):
        meaning = ivr.interpret(digits, "", Mode.BOT)
        assert meaning.heard is Heard.SPEECH and meaning.text == digits


def test_spoken_numbers_reach_the_bot_as_digits() -> None:
    meaning = ivr.interpret("", "my order is one oh two three four", Mode.BOT)
    assert meaning.heard is Heard.SPEECH and meaning.bot_text == "my order is 10234"
    assert meaning.text == "my order is one oh two three four"


# --- speech normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said, meant",
    [
        ("one oh two three four", "10234"),
        ("one zero two three four", "10234"),
        ("one zero two thirty four", "10234"),
        ("ten two three four", "10234"),
        ("ten thousand two hundred thirty four", "10234"),
        ("ten thousand two hundred and thirty four", "10234"),
        ("one double two three", "1223"),
        ("triple five one two", "55512"),
        ("1 0 2 3 4", "10234"),
        ("my number is four one five five five five oh one hundred", "my number is 4155550100"),
        ("order number five six", "order number 56"),
        ("where is order one two three?", "where is order 123?"),
        ("two large red t-shirts", "two large red t-shirts"),
        ("I'd like two large red T-shirts please", "I'd like two large red T-shirts please"),
        ("twenty five mugs", "twenty five mugs"),
        ("I want thirty-four mugs", "I want thirty-four mugs"),
        ("oh I see", "oh I see"),
        ("oh two large ones", "oh two large ones"),
        ("one of those", "one of those"),
    ],
)
def test_numbers_said_on_the_phone(said: str, meant: str) -> None:
    assert ivr.normalize_speech(said) == meant


@pytest.mark.parametrize(
    "said, meant",
    [
        ("my email is john dot smith at example dot com", "my email is john.smith@example.com"),
        ("j o h n at gmail dot com.", "john@gmail.com."),
        ("J O H N underscore doe at example dot co dot uk", "john_doe@example.co.uk"),
        ("send it to jane dash doe at mail dot example dot org please", "send it to jane-doe@mail.example.org please"),
        ("john at example.com", "john@example.com"),
        ("double-u double-u double-u dot example dot com", "www.example.com"),
        ("my name is double-u a l t at example dot com", "my name is walt@example.com"),
        ("I'm at home", "I'm at home"),
        ("I am at the shop now", "I am at the shop now"),
        ("go to the shop dot then", "go to the shop dot then"),
    ],
)
def test_emails_and_letters_said_on_the_phone(said: str, meant: str) -> None:
    assert ivr.normalize_speech(said) == meant


def test_double_u_is_the_letter_w() -> None:
    assert ivr.normalize_speech("it's spelled double u e s t") == "it's spelled w e s t"
    assert ivr.normalize_speech("Double-you") == "w"


def test_spoken_digits_are_one_number_or_none() -> None:
    assert ivr.spoken_digits("one oh two three four") == "10234"
    assert ivr.spoken_digits("two large") is None
    assert ivr.spoken_digits("oh") is None
    assert ivr.spoken_digits("") is None


# --- numbered choices ----------------------------------------------------------------------------------


def test_buttons_written_out_by_the_core_are_spoken_as_numbered_choices() -> None:
    text = numbered_choices("Which size?", ["Small", "Large"])
    spoken, titles = ivr.spoken_choices(text)
    assert titles == ["Small", "Large"]
    assert spoken == "Which size? Say or press 1 for Small, 2 for Large."
    assert ivr.spoken_choices("Just text.\n1. not a choice list") == ("Just text.\n1. not a choice list", [])
    only_choices, titles = ivr.spoken_choices(numbered_choices("", ["Yes", "No", "Maybe"]))
    assert only_choices == "Say or press 1 for Yes, 2 for No, 3 for Maybe." and len(titles) == 3


@pytest.mark.parametrize(
    "reply, picked",
    [("2", 1), ("two", 1), ("Two.", 1), ("the second", 1), ("The second one, please.", 1), ("number two", 1),
     ("option 2", 1), ("large", 1), ("The large one", 1), ("last", 1), ("1", 0), ("the first one", 0),
     ("Small.", 0), ("3", None), ("three", None), ("0", None), ("I'm not sure what to choose from all of these", None),
     ("", None)],
)
def test_a_choice_is_picked_by_number_ordinal_or_title(reply: str, picked: int | None) -> None:
    assert ivr.pick_choice(reply, ["Small", "Large"]) == picked


def test_the_longest_title_said_wins_and_a_count_without_titles_works() -> None:
    assert ivr.pick_choice("extra large please", ["Large", "Extra large"]) == 1
    assert ivr.pick_choice("the third", (), count=3) == 2
    assert ivr.pick_choice("the third", (), count=2) is None


def test_choices_in_a_gather_become_the_number_the_core_expects() -> None:
    meaning = ivr.interpret("", "the second one", Mode.CHOICES, ["Small", "Large"])
    assert meaning.heard is Heard.CHOICE and meaning.text == "2" and meaning.choice == 2
    assert ivr.interpret("1", "", Mode.CHOICES, count=2).text == "1"
    # not a choice: free speech for the bot
    assert ivr.interpret("", "actually I want a mug", Mode.CHOICES, ["Small", "Large"]).heard is Heard.SPEECH


# --- splitting for <Say> ----------------------------------------------------------------------------------


def test_short_text_is_one_say() -> None:
    assert ivr.split_for_say("Your order ships tomorrow.") == ["Your order ships tomorrow."]
    assert ivr.split_for_say("") == []


def test_long_text_is_split_at_sentence_boundaries_under_the_limit() -> None:
    sentences = [f"This is sentence number {i} of the reply, and it says something." for i in range(200)]
    text = " ".join(sentences)
    assert len(text) > 3 * ivr.SAY_LIMIT
    pieces = ivr.split_for_say(text)
    assert len(pieces) > 1 and all(len(p) <= ivr.SAY_LIMIT for p in pieces)
    assert all(p.endswith("something.") for p in pieces)  # every piece ends at a sentence's end
    assert " ".join(pieces) == text  # nothing lost or reordered


def test_a_sentence_longer_than_the_limit_is_cut_after_a_comma_or_between_words() -> None:
    long_sentence = ", ".join(f"item {i}" for i in range(100)) + "."
    pieces = ivr.split_for_say(long_sentence, limit=100)
    assert all(len(p) <= 100 for p in pieces) and all(p.endswith((",", ".")) for p in pieces)
    words = " ".join(["word"] * 100)
    assert all(len(p) <= 50 for p in ivr.split_for_say(words, limit=50))
    with pytest.raises(ValueError):
        ivr.split_for_say("x", limit=5)


def test_text_is_cleaned_for_the_voice() -> None:
    assert ivr.clean_for_speech("Great choice! 👍 **Done**") == "Great choice! Done"
    assert ivr.clean_for_speech("See https://shop.example.com/o/1 for details") == "See the link we sent you for details"
    assert ivr.say_all(["Hi.", numbered_choices("Which size?", ["S", "L"])]) == ["Hi.", "Which size? Say or press 1 for S, 2 for L."]


# --- the sentences of a call --------------------------------------------------------------------------

TODAY = date(2025, 6, 10)  # a Tuesday


@pytest.mark.parametrize(
    "status, promised, phrase",
    [
        ("placed", date(2025, 6, 11), "your order 10234 should arrive tomorrow"),
        ("confirmed", date(2025, 6, 10), "your order 10234 is confirmed and should arrive today"),
        ("picking", date(2025, 6, 13), "your order 10234 is being packed and should arrive on Friday"),
        ("placed", date(2025, 6, 30), "your order 10234 should arrive on Monday 30 June"),
        ("placed", date(2025, 6, 8), "your order 10234 is running late, sorry: it was due on 8 June"),
        ("placed", None, "your order 10234 is being prepared"),
        ("shipped", date(2025, 6, 11), "your order 10234 has shipped and should arrive tomorrow"),
        ("shipped", date(2025, 6, 1), "your order 10234 has shipped and is on its way"),
        ("delivered", date(2025, 6, 1), None),
        ("cancelled", None, None),
    ],
)
def test_the_status_of_the_latest_open_order(status: str, promised: date | None, phrase: str | None) -> None:
    assert ivr.order_status_phrase(10234, status, promised, TODAY) == phrase


def test_the_greeting_names_the_caller_and_their_order() -> None:
    assert ivr.greeting("Alice Martin", "your order 10234 should arrive tomorrow") == (
        "Hello Alice Martin, thanks for calling. Your order 10234 should arrive tomorrow."
    )
    assert ivr.greeting("", None) == "Hello, thanks for calling."


@pytest.mark.parametrize(
    "position, eta, phrase",
    [
        (1, 30, "You are next in the queue. Someone will be with you in under a minute."),
        (3, 300, "You are number 3 in the queue. The estimated wait is about 5 minutes."),
        (2, 61, "You are number 2 in the queue. The estimated wait is about 2 minutes."),
        (2, None, "You are number 2 in the queue."),
        (None, None, "Please stay on the line: a colleague will be with you shortly."),
    ],
)
def test_the_place_in_the_queue(position: int | None, eta: int | None, phrase: str) -> None:
    assert ivr.queue_phrase(position, eta) == phrase


def test_hints_are_the_menu_then_the_catalogue_without_repeats() -> None:
    text = ivr.hints(["T-Shirt, classic", "Mug", "mug", "x" * 150])
    phrases = text.split(", ")
    assert phrases[: len(ivr.MENU_HINTS)] == list(ivr.MENU_HINTS)
    assert "T-Shirt classic" in phrases and phrases.count("Mug") == 1 and "mug" not in phrases
    assert all(len(p) <= 100 for p in phrases)
    assert len(ivr.hints([f"p{i}" for i in range(500)], limit=50).split(", ")) == 50
