"""Email parsing and threading tokens, on the .eml corpus in tests/fixtures/email (no database, no network)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from integrations.email.ingest import base_address, stored_type, thread_key_of
from integrations.email.parse import (
    decode_bytes,
    decode_words,
    find_quote_start,
    fingerprint,
    parse_email,
    parse_headers,
    read_auth,
    sanitise_html,
    sniff,
    strip_quotes,
)
from integrations.email.threading import (
    read_token,
    sign_token,
    subject_with_token,
    token_address,
    token_in_address,
    token_in_subject,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "email"
OURS = ("support@shop.example", "sales@shop.example")
AUTHSERV = "mx.shop.example"
SECRET = b"unit-test-secret"


def load(name: str, **subst: str) -> bytes:
    raw = (CORPUS / name).read_bytes()
    for key, value in {"TOKEN": "12-0123456789", "OUR_MSGID": "ours-1@hub.shop.example", "ROOT_MSGID": "root-1@mail.gmail.com", **subst}.items():
        raw = raw.replace(f"%%{key}%%".encode(), value.encode())
    return raw


def parse(name: str, **subst: str):  # type: ignore[no-untyped-def]
    return parse_email(load(name, **subst), our_addresses=OURS, authserv_id=AUTHSERV)


# --- threading tokens -------------------------------------------------------------------------------


def test_a_token_is_the_id_and_a_ten_hex_signature_and_reads_back() -> None:
    token = sign_token(1234, SECRET)
    cid, sig = token.split("-")
    assert cid == "1234" and len(sig) == 10 and all(c in "0123456789abcdef" for c in sig)
    assert read_token(token, SECRET) == 1234
    assert read_token(token.upper(), SECRET) == 1234  # mail programs may change the case


@pytest.mark.parametrize("token", ["", "1234", "1234-", "abc-0123456789", "1234-012345678", "1234-0123456789z", " 1-x "])
def test_malformed_tokens_read_as_none(token: str) -> None:
    assert read_token(token, SECRET) is None


def test_a_token_of_another_secret_or_another_id_is_refused() -> None:
    token = sign_token(77, SECRET)
    assert read_token(token, b"another-secret") is None
    forged = "78-" + token.split("-")[1]
    assert read_token(forged, SECRET) is None


def test_token_addresses_and_subjects() -> None:
    token = sign_token(5, SECRET)
    address = token_address("support@shop.example", token)
    assert address == f"support+c{token}@shop.example"
    assert token_address("support+old@shop.example", token) == address
    assert token_in_address(address) == token and token_in_address(address.upper()) == token
    assert token_in_address("support@shop.example") is None and token_in_address("support+abc@shop.example") is None
    assert base_address(address) == "support@shop.example"
    assert token_in_subject(f"Re: AW: order 10234 [#{token}]") == token
    assert token_in_subject("Re: order [#10234]") is None


@pytest.mark.parametrize("subject", ["order 10234", "Re: order 10234", "RE: Re: order 10234", "AW: Re: order 10234", "Re: order 10234 [#5-{sig}]", ""])
def test_subject_with_token_adds_re_and_the_tag_once(subject: str) -> None:
    token = sign_token(5, SECRET)
    subject = subject.replace("5-{sig}", token)
    once = subject_with_token(subject, token)
    assert once.startswith("Re: ") and not once.startswith("Re: Re:") and not once.startswith("Re: AW:")
    assert once.count(f"[#{token}]") == 1 and once.endswith(f"[#{token}]")
    assert subject_with_token(once, token) == once
    if subject:
        assert "order 10234" in once


def test_a_long_message_id_gives_a_thread_key_that_fits() -> None:
    assert thread_key_of("abc@x") == "abc@x"
    long_key = thread_key_of("a" * 290 + "@x")
    assert len(long_key) <= 180 and long_key.startswith("sha256:") and long_key == thread_key_of("a" * 290 + "@x")


# --- the corpus -------------------------------------------------------------------------------------


def test_gmail_new_message() -> None:
    e = parse("gmail_new.eml")
    assert (e.from_address, e.from_name) == ("ann.example@gmail.com", "Ann Example")  # lower-cased
    assert e.message_id == "CAE9x7Qp1dfG3=Zk2xJ4a8nWq0w@mail.gmail.com" and e.in_reply_to is None
    assert e.subject == "Where is my order 10234?" and e.to == ["support@shop.example"]
    assert e.text.startswith("Hello,\n\nI ordered two red t-shirts") and e.quote_at is None and e.new_text == e.text
    assert e.html_sanitised and "<div" in e.html_sanitised
    assert (e.auto, e.wake, e.no_auto_answer, e.spoofed, e.auth.result) == (None, True, False, False, "pass")


def test_gmail_reply_quotes_the_wrapped_attribution_line() -> None:
    e = parse("gmail_reply.eml")
    assert e.in_reply_to == "ours-1@hub.shop.example" and e.references == ["root-1@mail.gmail.com", "ours-1@hub.shop.example"]
    assert e.to == ["support+c12-0123456789@shop.example"]
    assert e.quote_at is not None and e.text[e.quote_at:].startswith("On Mon, 3 Jun 2024 at 10:02, Shop Support")
    assert e.new_text.endswith("if I'm not home?\n\nAnn") and ">" not in e.new_text
    assert "Your order 10234 left our warehouse" in e.text  # the full body is kept


def test_outlook_desktop_reply_in_german_with_thread_index() -> None:
    e = parse("outlook_desktop_reply.eml")
    assert (e.from_address, e.from_name) == ("juergen.mueller@firma-mueller.de", "Jürgen Müller")
    assert e.thread_index == "AQHatc6Jx0H3VQ4mRkq3h2nF0xX9M7G2uZ0AgAAFBoA="
    assert e.subject == "AW: Re: Lieferung an die Firmenadresse [#12-0123456789]"
    assert e.quote_at is not None and e.text[e.quote_at:].startswith("Von: Shop Support")
    assert e.new_text.endswith("Mit freundlichen Grüßen\nJürgen Müller") and "Müller GmbH, Hauptstraße 5" in e.new_text
    assert e.html_sanitised is not None and "<style>" in e.html_sanitised and "MsoNormal" in e.html_sanitised  # styles kept


def test_outlook_web_reply_collapses_from_the_separator_line() -> None:
    e = parse("outlook_web_reply.eml")
    assert e.in_reply_to is None and e.references == ["ours-1@hub.shop.example"]
    assert e.quote_at is not None and e.text[e.quote_at:].startswith("________________________________\nFrom: Shop Support")
    assert e.new_text == 'Hi Sam, the tracking page says "address incomplete". My flat is 4B - can you add that?\n\nPriya'


def test_apple_mail_reply_in_french() -> None:
    e = parse("apple_mail_reply.eml")
    assert e.quote_at is not None and e.text[e.quote_at:].startswith("> Le 5 juin 2024 à 09:14, Shop Support")
    assert e.new_text == "Merci beaucoup ! J’ai déposé le colis au bureau de poste ce matin.\n\nClaire"


def test_exchange_out_of_office() -> None:
    e = parse("exchange_ooo.eml")
    assert (e.auto, e.wake, e.no_auto_answer) == ("out_of_office", False, True)
    assert e.in_reply_to == "ours-1@hub.shop.example"


def test_gmail_vacation_reply() -> None:
    e = parse("gmail_vacation.eml")
    assert (e.auto, e.wake, e.no_auto_answer) == ("out_of_office", False, True)
    assert "Auto-Submitted: auto-replied" in e.auto_reasons and "Return-Path: <>" in e.auto_reasons


def test_postfix_bounce_is_a_permanent_failure_of_our_message() -> None:
    e = parse("postfix_bounce.eml")
    assert e.auto == "bounce" and not e.wake and e.no_auto_answer
    assert e.bounce is not None
    assert e.bounce.original_message_id == "ours-1@hub.shop.example"
    assert (e.bounce.status, e.bounce.recipient, e.bounce.permanent, e.bounce.action) == ("5.1.1", "nobody.here@example.org", True, "failed")
    assert "User unknown" in e.bounce.diagnostic
    assert e.attachments == []  # the returned message is the report's, not a file for the agent


def test_a_list_message_is_never_answered() -> None:
    e = parse("newsletter_reply.eml")
    assert e.auto == "list" and e.no_auto_answer and not e.wake
    assert {"List-Id", "List-Unsubscribe", "Precedence: list"} <= set(e.auto_reasons)
    assert e.cc == ["support@shop.example"] and e.new_text == "Does the sale include the merino scarves?\n\nMarco"


@pytest.mark.parametrize("header", [
    "Auto-Submitted: auto-generated", "Precedence: bulk", "Precedence: junk", "Precedence: auto_reply", "X-Autoreply: yes",
    "X-Autorespond: yes", "List-Id: <x.lists.example>", "List-Unsubscribe: <mailto:leave@lists.example>",
    "Return-Path: <>", "X-Loop: support@shop.example",
])
def test_each_automatic_marker_means_never_auto_answer(header: str) -> None:
    raw = f"{header}\nFrom: a@example.com\nTo: support@shop.example\nSubject: hello\nMessage-ID: <m@x>\n\nhi\n".encode()
    e = parse_email(raw, our_addresses=OURS)
    assert e.no_auto_answer and e.auto is not None
    if header.startswith("X-Loop"):
        assert e.auto == "loop"


def test_auto_submitted_no_and_a_foreign_x_loop_are_not_automatic() -> None:
    raw = b"Auto-Submitted: no\nX-Loop: other@list.example\nFrom: a@example.com\nSubject: hi\n\nhello\n"
    e = parse_email(raw, our_addresses=OURS)
    assert (e.auto, e.no_auto_answer, e.wake) == (None, False, True)


def test_a_mailer_daemon_sender_is_never_answered() -> None:
    raw = b"From: MAILER-DAEMON@mx.example\nSubject: Delivery failure\n\nYour message could not be delivered.\n"
    e = parse_email(raw, our_addresses=OURS)
    assert e.no_auto_answer and e.auto is not None


def test_a_split_rfc2047_subject_keeps_the_character_cut_between_two_words() -> None:
    e = parse("split_subject.eml")
    assert e.subject == "Bestellung für Müller – Lieferadresse ändern"
    assert e.from_name == "Hans Müller"


def test_windows_1258_quoted_printable_reads_as_composed_vietnamese() -> None:
    e = parse("windows1258_qp.eml")
    assert "Tôi muốn đổi địa chỉ giao hàng của đơn 10281 sang 12 Lý Thường Kiệt, Hà Nội." in e.text
    assert e.from_name == "Nguyễn Thị Hoa" and e.subject == "Đổi địa chỉ giao hàng"


def test_big5_subject_and_gb2312_body() -> None:
    e = parse("legacy_charsets.eml")
    assert e.subject == "訂單 10290 查詢" and e.from_name == "王伟"
    assert "请问我的订单 10290 什么时候发货？" in e.text


@pytest.mark.parametrize("text, charset", [
    ("Grüße", "iso-8859-1"), ("Grüße €", "windows-1252"), ("Zażółć", "iso-8859-2"), ("Привет", "windows-1251"),
    ("Привет", "koi8-r"), ("Γειά", "iso-8859-7"), ("שלום", "windows-1255"), ("مرحبا", "windows-1256"),
    ("Merhaba ğ", "iso-8859-9"), ("镕", "gb18030"), ("喆", "big5hkscs"),
])
def test_legacy_charsets(text: str, charset: str) -> None:
    assert decode_bytes(text.encode(charset), charset) == text


def test_gb2312_and_big5_labels_read_through_their_supersets() -> None:
    assert decode_bytes("镕".encode("gbk"), "GB2312") == "镕"  # GBK-only character in a "GB2312" message
    assert decode_bytes("喆".encode("big5hkscs"), "big5") == "喆"


def test_an_unknown_or_wrong_charset_never_raises() -> None:
    assert decode_bytes("café".encode("utf-8"), "x-made-up") == "café"
    assert decode_bytes(b"caf\xe9", "utf-8") == "café"  # mislabelled Latin-1
    assert decode_words("=?x-made-up?Q?caf=C3=A9?=") == "café"
    assert decode_words("=?utf-8?B?!!!?=") in ("=?utf-8?B?!!!?=", "")


def test_rfc2047_words_folded_over_lines_and_whitespace_between_them() -> None:
    assert decode_words("=?UTF-8?Q?Gr=C3?=\r\n =?UTF-8?Q?=BC=C3=9Fe?= aus =?ISO-8859-1?Q?M=FCnchen?=") == "Grüße aus München"
    assert decode_words("plain text") == "plain text"


def test_malformed_headers_lose_only_themselves() -> None:
    e = parse("malformed_headers.eml")
    assert e.from_address == "broken@example.com"
    assert e.to[0] == "support@shop.example"
    assert e.subject.startswith("Hello Wörld") and "über" in e.subject
    assert e.date is None and e.message_id == "broken-headers-1@example.com" and e.in_reply_to is None
    assert "The body is still here: café" in e.text
    assert set(e.header_fallbacks) >= {"From", "Subject", "Date"}


def test_no_message_id() -> None:
    e = parse("no_message_id.eml")
    assert e.message_id is None and e.text == "Please restock TSHIRT-RED-M, only 3 left at the pop-up store."
    assert parse_headers(load("no_message_id.eml")).message_id is None


def test_two_of_our_addresses_are_both_listed() -> None:
    e = parse("two_addresses.eml")
    assert e.to == ["support@shop.example", "sales@shop.example"] and e.cc == ["sofia.work@example.com"]


def test_reply_to_is_kept_but_the_sender_is_from() -> None:
    e = parse("reused_message_id_a.eml")
    assert e.from_address == "noreply-form@webforms.example" and e.reply_to == "olga.ivanova@example.com"


def test_a_reused_message_id_has_another_fingerprint_and_a_repeat_the_same() -> None:
    a, b = load("reused_message_id_a.eml"), load("reused_message_id_b.eml")
    assert parse_headers(a).message_id == parse_headers(b).message_id == "contactform@webforms.example"
    assert fingerprint(a) != fingerprint(b)
    relayed = b"Received: from mx by imap.example; Sun, 9 Jun 2024 08:00:01 +0000\r\nReturn-Path: <x@y>\r\n" + a.replace(b"\n", b"\r\n")
    assert fingerprint(relayed) == fingerprint(a)  # the IMAP copy and the SMTP copy are one message


# --- HTML ---------------------------------------------------------------------------------------------


def test_html_without_an_html_tag_is_rendered_as_text_with_its_table() -> None:
    e = parse("html_no_html_tag.eml")
    assert e.html_sanitised is not None and "<table" in e.html_sanitised and 'style="font-family:Arial"' in e.html_sanitised
    assert "TSHIRT-RED-M\t40\t9.90" in e.text and e.text.startswith("Hello,")


def test_script_handlers_javascript_urls_iframes_svg_forms_are_removed() -> None:
    e = parse("xss_payloads.eml")
    html = (e.html_sanitised or "").lower()
    for bad in ("<script", "alert(", "onerror", "onload", "onclick", "javascript:", "<iframe", "<svg", "<math", "<form",
                "<input", "<object", "<embed", "expression(", "data:text/html", "hidden title"):
        assert bad not in html, bad
    assert "<table>" in html and "<b>invoice</b>" in html and 'href="https://shop.example/orders/10299"' in html
    assert 'src="https://evil.example/track.png"' in html  # remote images: the console blocks them until allowed
    assert e.text.startswith("Hello, please check my invoice.") and "alert" not in e.text


@pytest.mark.parametrize("payload", [
    '<a href="jav&#x09;ascript:alert(1)">x</a>', '<img src=x onerror=alert(1)>', '<p style="background:url(&#106;avascript:alert(1))">x</p>',
    '<div style="behavior:url(x.htc)">x</div>', '<style>@import "https://evil.example/x.css";</style>',
    '<svg><animate onbegin=alert(1) attributeName=x dur=1s>', '<iframe srcdoc="<script>alert(1)</script>">',
    '<a href="vbscript:msgbox(1)">x</a>', '<base href="https://evil.example/">', '<meta http-equiv="refresh" content="0;url=https://evil.example">',
])
def test_sanitiser_payloads(payload: str) -> None:
    out = sanitise_html(payload).lower()
    for bad in ("javascript", "onerror", "onbegin", "behavior", "@import", "<iframe", "<svg", "vbscript", "<base", "<meta", "alert"):
        assert bad not in out, (payload, out)


def test_cid_images_keep_their_cid_url() -> None:
    assert 'src="cid:logo@x"' in sanitise_html('<img src="cid:logo@x" alt="logo">')


# --- quotes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quote", [
    "On Mon, 3 Jun 2024 at 10:02, Shop <support@shop.example> wrote:\n> old",
    "On Mon, Jun 3, 2024 at 10:02 AM Shop Support <\nsupport@shop.example> wrote:\n\n> old",
    "On 3 Jun 2024, at 10:02, Shop Support <support@shop.example> wrote:\n\n> old",
    "Am Mo., 3. Juni 2024 um 10:02 Uhr schrieb Shop Support <support@shop.example>:\n> alt",
    "Am 03.06.2024 um 10:02 schrieb Shop Support <support@shop.example>:\n\n> alt",
    "Le lun. 3 juin 2024 à 10:02, Shop Support <support@shop.example> a écrit :\n> ancien",
    "El lun, 3 jun 2024 a las 10:02, Shop Support (<support@shop.example>) escribió:\n> antiguo",
    "-----Original Message-----\nFrom: Shop\nSent: Monday\nTo: me\nSubject: x\n\nold",
    "-----Ursprüngliche Nachricht-----\nVon: Shop\nGesendet: Montag\n\nalt",
    "________________________________\nFrom: Shop Support <support@shop.example>\nSent: 04 June 2024 13:40\nTo: me\n\nold",
    "________________________________\nDe : Shop Support <support@shop.example>\nEnvoyé : lundi 3 juin 2024 10:02\nÀ : moi\n\nancien",
    "De: Shop Support <support@shop.example>\nEnviado: lunes, 3 de junio de 2024 10:02\nPara: yo\nAsunto: x\n\nantiguo",
    "From: Shop Support <support@shop.example>\nDate: Monday, 3 June 2024 at 10:02\nTo: me\nSubject: x\n\nold",
    "> old line one\n> old line two\n>\n> old line three",
])
def test_quote_headers_in_four_languages(quote: str) -> None:
    text = "My new answer.\n\nAnn\n\n" + quote
    at = find_quote_start(text)
    assert at == len("My new answer.\n\nAnn\n\n"), (quote, at)
    assert strip_quotes(text, at) == "My new answer.\n\nAnn"


def test_interleaved_answers_are_not_collapsed_but_the_bot_gets_only_the_new_lines() -> None:
    text = "> Which size?\nM please\n> Which colour?\nRed"
    assert find_quote_start(text) is None
    assert strip_quotes(text, None) == "M please\nRed"


def test_a_forward_with_nothing_before_it_is_not_a_quote() -> None:
    assert find_quote_start("---------- Forwarded message ---------\nFrom: a\nDate: b\n\nbody") is None


def test_signature_and_phone_footer_are_not_new_text() -> None:
    assert strip_quotes("Yes please.\n\nSent from my iPhone", None) == "Yes please."
    assert strip_quotes("Yes please.\n-- \nAnn Example\nCEO", None) == "Yes please."


def test_a_sentence_mentioning_wrote_is_not_a_quote() -> None:
    assert find_quote_start("On Monday I wrote to you about order 10234 but got no answer. Can you help?") is None


# --- attachments -----------------------------------------------------------------------------------------


def test_an_svg_declared_as_png_is_sniffed_and_an_exe_is_omitted_with_its_reason() -> None:
    e = parse("svg_attachment.eml")
    (svg,) = e.attachments
    assert (svg.name, svg.content_type, svg.declared_type) == ("logo.svg", "image/svg+xml", "image/png")
    assert b"onload" in svg.data  # kept as the customer sent it: it is never served inline
    assert stored_type(svg.content_type) == "application/octet-stream"
    assert [(o.name, "executable" in o.reason) for o in e.omitted] == [("setup.exe", True)]


def test_seventy_pdfs_are_all_kept() -> None:
    e = parse("seventy_pdfs.eml")
    assert len(e.attachments) == 70 and e.omitted == []
    assert {a.content_type for a in e.attachments} == {"application/pdf"}
    assert [a.name for a in e.attachments][:2] == ["invoice-001.pdf", "invoice-002.pdf"]
    assert len({a.data for a in e.attachments}) == 70


@pytest.mark.parametrize("data, declared, name, expected", [
    (b"%PDF-1.7\n...", "application/octet-stream", "a.pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n....", "application/pdf", "a.pdf", "image/png"),
    (b"PK\x03\x04....", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a.docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (b"PK\x03\x04....", "image/png", "a.png", "application/zip"),
    (b"<html><script>x</script>", "text/plain", "a.txt", "text/html"),
    (b"MZ\x90\x00", "application/pdf", "a.pdf", "application/x-msdownload"),
    (b"plain words\n", "application/octet-stream", "notes", "text/plain"),
    (b"\x00\x01\x02\x03", "image/jpeg", "x.jpg", "application/octet-stream"),
])
def test_sniffing_trusts_bytes_not_labels(data: bytes, declared: str, name: str, expected: str) -> None:
    assert sniff(data, declared, name) == expected


def test_empty_files_and_inline_cid_images() -> None:
    raw = (
        b'From: a@example.com\nSubject: pic\nMIME-Version: 1.0\nContent-Type: multipart/related; boundary="b"\n\n'
        b'--b\nContent-Type: text/html\n\n<p>see <img src="cid:img1@x"></p>\n'
        b'--b\nContent-Type: image/png\nContent-ID: <img1@x>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgoAAAANSUhEUg==\n'
        b'--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="empty.pdf"\n\n\n--b--\n'
    )
    e = parse_email(raw)
    (img,) = e.attachments
    assert (img.cid, img.inline, img.content_type) == ("img1@x", True, "image/png")
    assert [(o.name, o.reason) for o in e.omitted] == [("empty.pdf", "the file is empty")]
    assert 'src="cid:img1@x"' in (e.html_sanitised or "")


def test_an_rfc2231_filename_is_decoded() -> None:
    raw = (
        b'From: a@example.com\nSubject: f\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n'
        b"Content-Type: text/plain\n\nhi\n--b\nContent-Type: application/pdf\n"
        b"Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%BCller.pdf\n\n%PDF-1.4 x\n--b--\n"
    )
    (a,) = parse_email(raw).attachments
    assert a.name == "Rechnung Müller.pdf"


# --- Authentication-Results ---------------------------------------------------------------------------------


def test_spoofed_is_read_from_the_topmost_header_of_our_authserv_id_only() -> None:
    e = parse("spoofed.eml")
    assert e.spoofed and e.auth.result == "fail" and e.auth.dmarc == "fail"
    # the same message read by a hub that trusts another authserv-id (or none) says nothing
    assert not parse_email(load("spoofed.eml"), authserv_id="mx.other.example").spoofed
    assert parse_email(load("spoofed.eml")).auth.result == "none"


@pytest.mark.parametrize("header, result, spoofed", [
    ("mx.shop.example; dkim=pass header.d=a.example; dmarc=pass", "pass", False),
    ("mx.shop.example 1; dkim=fail; dkim=pass header.d=b.example; spf=fail", "pass", False),  # one signature passes
    ("mx.shop.example; dkim=fail (bad signature)", "fail", True),
    ("mx.shop.example; dmarc=fail (p=reject) header.from=bank.example", "fail", True),
    ("mx.shop.example; spf=fail; dkim=none", "none", False),
    ("mx.shop.example; none", "none", False),
    ("evil.example; dkim=fail; dmarc=fail", "none", False),
    ("(a comment may come first) mx.shop.example; dmarc=fail", "fail", True),
])
def test_authentication_results(header: str, result: str, spoofed: bool) -> None:
    auth = read_auth([header], AUTHSERV)
    assert (auth.result, auth.spoofed) == (result, spoofed)


# --- never raises ----------------------------------------------------------------------------------------------


def test_parsing_never_raises_on_mangled_corpus_messages() -> None:
    rng = random.Random(16)
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes()
        for _ in range(8):
            cut = raw[: rng.randrange(1, len(raw) + 1)]
            noisy = bytearray(cut)
            for _ in range(rng.randrange(0, 20)):
                if noisy:
                    noisy[rng.randrange(len(noisy))] = rng.randrange(256)
            e = parse_email(bytes(noisy), our_addresses=OURS, authserv_id=AUTHSERV)
            assert isinstance(e.text, str) and isinstance(e.subject, str)
    assert parse_email(b"").text == "" and parse_email(b"\x00\xff\xfe garbage").from_address == ""
