"""Attachments over HTTP: agents upload what the bytes say is an image or a PDF; files are opened with a session or a signed link."""

from __future__ import annotations

import re
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.keys import DB_KEY
from contact_center.settings import Settings
from crm_store.repositories import agents as agents_repo

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


APP: dict[str, object] = {}


@pytest.fixture
async def base(tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db", service_tokens=("t",), demo_data=False,
                        session_secret="s" * 32, media_dir=str(tmp_path / "media"), media_max_bytes=1000)
    app = create_app(settings)
    APP["app"] = app
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with app[DB_KEY].transaction() as s:
        await agents_repo.create_agent(s, "ann", "pw-ann-123", display_name="Ann")
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _form(data: bytes, name: str = "label.png") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="image/png")
    return form


async def test_upload_and_download(base: str) -> None:
    async with aiohttp.ClientSession() as anon:
        assert (await anon.post(f"{base}/console/media", data=_form(PNG))).status == 401
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert (await http.post(f"{base}/auth/login", json={"username": "ann", "password": "pw-ann-123"})).status == 200
        up = await http.post(f"{base}/console/media", data=_form(PNG, 'a"b.png'))
        assert up.status == 201
        stored = await up.json()
        assert stored["content_type"] == "image/png" and re.fullmatch(r"/media/[0-9a-f]{64}", stored["url"])
        assert '"' not in stored["name"]
        fake = await http.post(f"{base}/console/media", data=_form(b"<script>alert(1)</script>", "x.png"))
        assert fake.status == 415  # the declared type is not trusted
        big = await http.post(f"{base}/console/media", data=_form(PNG + b"\x00" * 2000))
        assert big.status == 413
        got = await http.get(f"{base}{stored['url']}")
        assert got.status == 200 and await got.read() == PNG and got.headers["X-Content-Type-Options"] == "nosniff"
    async with aiohttp.ClientSession() as anon:
        assert (await anon.get(f"{base}{stored['url']}")).status == 403
        assert (await anon.get(f"{base}{stored['url']}?exp=9999999999&sig=forged")).status == 403
        assert (await anon.get(f"{base}/media/..%2F..%2Fetc%2Fpasswd")).status in (403, 404)


async def test_files_that_can_carry_script_download_and_a_customers_file_name_never_breaks_a_header(base: str) -> None:
    from contact_center.media_routes import MEDIA_KEY

    media = APP["app"][MEDIA_KEY]  # type: ignore[index]
    svg = await media.put(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml", "logo.svg")
    named = await media.put(b"%PDF-1.4 x", "application/pdf", 'prix "été"\r\nX-Evil: 1.pdf')
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert (await http.post(f"{base}/auth/login", json={"username": "ann", "password": "pw-ann-123"})).status == 200
        got = await http.get(f"{base}/media/{svg.key}")
        assert got.status == 200 and got.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in got.headers["Content-Security-Policy"]
        pdf = await http.get(f"{base}/media/{named.key}")
        assert pdf.status == 200 and "X-Evil" not in pdf.headers
        disposition = pdf.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="prix _') and "filename*=UTF-8''prix%20%22%C3%A9t%C3%A9%22%0D%0AX-Evil" in disposition
