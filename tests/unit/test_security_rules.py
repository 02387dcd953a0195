"""The small rules of ``contact_center/security.py``: origins, trusted proxies, the client's address, the page
kinds, the settings that feed them, and the compose stack's proxy setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from aiohttp.test_utils import make_mocked_request
from aiohttp import web

from contact_center.security import (
    SECURITY_KEY,
    SecurityConfig,
    client_address,
    cross_site_reason,
    inline_handler_hashes,
    is_https,
    origin_of,
    page_kind,
    parse_networks,
)
from contact_center.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _request(headers: dict[str, str], *, remote: str = "127.0.0.1", config: SecurityConfig | None = None,
             method: str = "POST", path: str = "/auth/login") -> web.Request:
    app = web.Application()
    app[SECURITY_KEY] = config or SecurityConfig()
    req = make_mocked_request(method, path, headers={"Host": "hub.test:8080", **headers}, app=app)
    return req.clone(remote=remote)


def test_origins_are_compared_by_scheme_host_and_port() -> None:
    assert origin_of("https://Hub.Example:443/path?q") == "https://hub.example"
    assert origin_of("http://hub.example:80") == "http://hub.example"
    assert origin_of("http://hub.example:8080") == "http://hub.example:8080"
    assert origin_of("http://[::1]:8080/x") == "http://[::1]:8080"
    for bad in ("null", "", None, "file:///etc/passwd", "javascript:alert(1)", "https://", "http://h:99999"):
        assert origin_of(bad) is None, bad


def test_trusted_proxies_are_addresses_or_blocks_and_a_bad_one_is_named() -> None:
    nets = parse_networks(["10.0.0.0/8", " 172.28.0.2 ", "", "::1"])
    assert len(nets) == 3
    with pytest.raises(ValueError, match="'proxy.local'"):
        parse_networks(["proxy.local"])
    settings = Settings.from_env({"TRUSTED_PROXIES": "172.28.0.2, 10.1.0.0/16", "LOGIN_LOCKOUT_SECONDS": "0",
                                  "LOGIN_MAX_FAILURES": "7"})
    assert settings.trusted_proxies == ("172.28.0.2", "10.1.0.0/16")
    assert settings.login_lockout_seconds == 0 and settings.login_max_failures == 7
    assert Settings.from_env({}).trusted_proxies == ()


def test_forwarded_headers_are_believed_only_from_a_trusted_proxy() -> None:
    proxy = SecurityConfig(trusted_proxies=parse_networks(["10.0.0.2"]))
    spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}
    assert not is_https(_request(spoof, remote="198.51.100.1", config=proxy))
    assert client_address(_request(spoof, remote="198.51.100.1", config=proxy)) == "198.51.100.1"
    assert is_https(_request(spoof, remote="10.0.0.2", config=proxy))
    assert client_address(_request(spoof, remote="10.0.0.2", config=proxy)) == "203.0.113.5"
    # the client wrote its own X-Forwarded-For: nginx appended the address it saw, the right-most one counts
    chain = {"X-Forwarded-For": "1.2.3.4, 203.0.113.5"}
    assert client_address(_request(chain, remote="10.0.0.2", config=proxy)) == "203.0.113.5"
    garbage = {"X-Forwarded-For": "1.2.3.4, not-an-ip"}
    assert client_address(_request(garbage, remote="10.0.0.2", config=proxy)) == "10.0.0.2"
    # PUBLIC_BASE_URL https: always https
    assert is_https(_request({}, config=SecurityConfig(public_origin="https://hub.example", public_https=True)))


def test_cross_site_is_told_by_origin_then_fetch_metadata_then_referer() -> None:
    config = SecurityConfig(public_origin="https://hub.example", public_https=True)
    same = [{"Origin": "http://hub.test:8080"}, {"Origin": "https://hub.test:8080"}, {"Origin": "https://hub.example"},
            {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Referer": "https://hub.example/console"}, {}]
    cross = [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Origin": "http://hub.test:8081"},
             {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Referer": "https://evil.example/"},
             {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}]
    for headers in same:
        assert cross_site_reason(_request(headers, config=config)) is None, headers
    for headers in cross:
        assert cross_site_reason(_request(headers, config=config)) is not None, headers


def test_page_kinds() -> None:
    assert [page_kind(p) for p in ("/console", "/supervisor", "/shop", "/", "/dev/phone", "/console/canned.json",
                                   "/static/widget.js", "/api/orders")] == [
        "console", "supervisor", "shop", "shop", "dev", "other", "other", "other"]


def test_the_consoles_inline_handlers_are_hashed(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("""<script src=x onerror="document.getElementById('e').hidden = false"></script>
                       <img onload='a &amp;&amp; b()'>""")
    hashes = inline_handler_hashes(page)
    assert len(hashes) == 2 and all(h.startswith("'sha256-") for h in hashes)
    assert inline_handler_hashes(tmp_path / "missing.html") == ()


def test_the_compose_hubs_trust_exactly_the_proxys_fixed_address() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    proxy_ip = doc["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert doc["services"]["hub"]["environment"]["TRUSTED_PROXIES"] == proxy_ip
    pool = doc["networks"]["default"]["ipam"]["config"][0]
    import ipaddress

    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(pool["subnet"])
    assert ipaddress.ip_address(proxy_ip) not in ipaddress.ip_network(pool["ip_range"])  # no container gets it by chance
