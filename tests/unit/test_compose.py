"""Static checks of docker-compose.yml and the files it refers to.

There is no Docker engine where the tests run, so the production stack is never started here:
these tests parse it instead. ``compose_problems`` holds every check; the tests call it on the
real file and on broken copies, to show each check does catch what it is meant to.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

HUB = "hub"
PROXY = "proxy"
POSTGRES = "postgres"
REDIS = "redis"
RASA = "rasa"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
# Variables that hold secrets: they must be required (`:?`) wherever they appear.
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD)$")


# ---------------------------------------------------------------------------------------------
# Reading the compose model
# ---------------------------------------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """Parse the compose file (PyYAML resolves the `<<` merge keys compose also uses)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path.name} is not a YAML mapping"
    return doc


def _services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = doc.get("services") or {}
    return {name: (svc or {}) for name, svc in services.items()}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The environment of a service, whether written as a mapping or as a list of KEY=VALUE."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    out: dict[str, str] = {}
    for item in env:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Dependency name -> condition (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(d): "service_started" for d in deps}
    return {str(name): str((spec or {}).get("condition", "service_started")) for name, spec in deps.items()}


def _volume_sources(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(source, type) of each volume of a service: type is 'volume' (named), 'bind' or 'tmpfs'."""
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            source = str(vol.get("source", ""))
            kind = str(vol.get("type", "volume"))
        else:
            parts = str(vol).split(":")
            if len(parts) == 1:  # an anonymous volume: only the container path
                continue
            source = parts[0]
            kind = "bind" if source.startswith((".", "/", "~", "$")) else "volume"
        if source:
            yield source, kind


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if not isinstance(check, dict) or check.get("disable"):
        return False
    test = check.get("test")
    if not test:
        return False
    return not (isinstance(test, list) and test[0] == "NONE")


def _replicas(service: dict[str, Any]) -> int:
    deploy = service.get("deploy") or {}
    replicas = deploy.get("replicas", service.get("scale", 1))
    try:
        return int(replicas)
    except (TypeError, ValueError):
        return 0


def _command(service: dict[str, Any]) -> list[str]:
    """A service's command as a list of words, whichever form it is written in."""
    command = service.get("command") or []
    if isinstance(command, str):
        return command.split()
    return [str(part) for part in command]


def _fill_interpolations(value: str) -> str:
    """Replace each ${...} by a harmless word, so the result can be parsed as a URL."""
    return _INTERPOLATION.sub("x", value.replace("$$", "$"))


def _strings(node: Any) -> Iterator[str]:
    """Every string anywhere in the document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _interpolations(doc: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(name, operator, argument) of each ${...} in the document."""
    for text in _strings(doc):
        for match in _INTERPOLATION.finditer(text):
            yield match["name"], match["op"] or "", match["arg"]


# ---------------------------------------------------------------------------------------------
# The checks: each returns a list of readable problems (empty = fine)
# ---------------------------------------------------------------------------------------------


def check_images_and_builds(doc: dict[str, Any], root: Path) -> list[str]:
    problems = []
    for name, svc in _services(doc).items():
        build = svc.get("build")
        if build is None:
            if not svc.get("image"):
                problems.append(f"service {name!r} has neither `image` nor `build`")
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = root / str(build.get("context", "."))
        if not context.is_dir():
            problems.append(f"service {name!r}: build context {context} is not a directory")
            continue
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        if not dockerfile.is_file():
            problems.append(f"service {name!r}: dockerfile {dockerfile} does not exist")
    return problems


def _check_url(
    services: dict[str, dict[str, Any]], env: dict[str, str], key: str, target: str,
    schemes: tuple[str, ...], port: int,
) -> list[str]:
    raw = env.get(key)
    if not raw:
        return [f"hub: {key} is not set"]
    url = urlsplit(_fill_interpolations(raw))
    problems = []
    if url.scheme not in schemes:
        problems.append(f"hub: {key}={raw!r} has scheme {url.scheme!r}, expected one of {schemes}")
    if url.hostname != target:
        problems.append(f"hub: {key}={raw!r} points at host {url.hostname!r}, not the {target!r} service")
    elif target not in services:
        problems.append(f"hub: {key} points at {target!r}, which is not a service")
    try:
        url_port = url.port
    except ValueError:
        url_port = None
    if url_port != port:
        problems.append(f"hub: {key}={raw!r} uses port {url_port}, expected {port}")
    return problems


def check_hub_urls(doc: dict[str, Any], root: Path) -> list[str]:
    services = _services(doc)
    if HUB not in services:
        return [f"no {HUB!r} service"]
    env = _environment(services[HUB])
    problems = _check_url(services, env, "DATABASE_URL", POSTGRES, ("postgresql+asyncpg",), 5432)
    problems += _check_url(services, env, "REDIS_URL", REDIS, ("redis",), 6379)
    problems += _check_url(services, env, "RASA_URL", RASA, ("http",), 5005)
    # The ports in the URLs must be the ones the services listen on.
    rasa_cmd = _command(services.get(RASA, {}))
    if "--port" in rasa_cmd and rasa_cmd.index("--port") + 1 < len(rasa_cmd):
        if rasa_cmd[rasa_cmd.index("--port") + 1] != "5005":
            problems.append("rasa: its --port is not the 5005 that the hub's RASA_URL uses")
    return problems


def check_depends_on_targets_exist(doc: dict[str, Any], root: Path) -> list[str]:
    services = _services(doc)
    return [
        f"service {name!r} depends on {dep!r}, which is not a service"
        for name, svc in services.items()
        for dep in _depends_on(svc)
        if dep not in services
    ]


def check_dependencies_have_healthchecks(doc: dict[str, Any], root: Path) -> list[str]:
    """A long-running service others depend on must have a healthcheck; one-shot jobs (waited on
    with service_completed_successfully) need none."""
    services = _services(doc)
    problems = []
    for name, svc in services.items():
        for dep, condition in _depends_on(svc).items():
            if dep not in services or condition == "service_completed_successfully":
                continue
            if not _has_healthcheck(services[dep]):
                problems.append(f"service {name!r} depends on {dep!r} ({condition}), which has no healthcheck")
            elif condition != "service_healthy":
                problems.append(
                    f"service {name!r} depends on {dep!r} with {condition}; use service_healthy"
                )
    return problems


def check_hub_replicas(doc: dict[str, Any], root: Path) -> list[str]:
    hub = _services(doc).get(HUB)
    if hub is None:
        return [f"no {HUB!r} service"]
    replicas = _replicas(hub)
    problems = [] if replicas >= 2 else [f"hub has {replicas} replica(s); at least 2 expected"]
    if hub.get("container_name"):
        problems.append("hub has a container_name, which prevents running several replicas")
    if hub.get("ports"):
        problems.append("hub publishes host ports, which clash between replicas; the proxy publishes")
    return problems


def check_rasa_not_published(doc: dict[str, Any], root: Path) -> list[str]:
    rasa = _services(doc).get(RASA)
    if rasa is None:
        return [f"no {RASA!r} service"]
    problems = []
    if rasa.get("ports"):
        problems.append(f"rasa publishes host ports {rasa['ports']!r}; it must only `expose`")
    if rasa.get("network_mode") == "host":
        problems.append("rasa uses the host network, which publishes its API")
    command = _command(rasa)
    if "--enable-api" in command and "--auth-token" not in command:
        problems.append("rasa enables its HTTP API without --auth-token")
    return problems


def check_named_volumes_declared(doc: dict[str, Any], root: Path) -> list[str]:
    declared = set((doc.get("volumes") or {}).keys())
    return [
        f"service {name!r} uses volume {source!r}, not declared under top-level `volumes`"
        for name, svc in _services(doc).items()
        for source, kind in _volume_sources(svc)
        if kind == "volume" and source not in declared
    ]


def check_proxy_config(doc: dict[str, Any], root: Path) -> list[str]:
    proxy = _services(doc).get(PROXY)
    if proxy is None:
        return [f"no {PROXY!r} service"]
    configs = [s for s, kind in _volume_sources(proxy) if kind == "bind" and s.endswith("nginx.conf")]
    if not configs:
        return ["proxy mounts no nginx.conf"]
    problems = []
    for source in configs:
        path = root / source
        if not path.is_file():
            problems.append(f"proxy mounts {source}, which does not exist")
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("proxy_pass", "Upgrade", HUB):
            if needle not in text:
                problems.append(f"{source} does not contain {needle!r}")
        if not re.search(rf"server\s+{HUB}:\d+", text):
            problems.append(f"{source} has no `server {HUB}:PORT` upstream entry")
        if "ip_hash" not in text:
            problems.append(f"{source} has no ip_hash: Socket.IO long-polling needs sticky sessions")
    if not proxy.get("ports"):
        problems.append("proxy publishes no port")
    return problems


def check_required_secrets(doc: dict[str, Any], root: Path) -> list[str]:
    """Variables required with `:?` get no default anywhere, secrets are always required,
    and the hub's secrets are taken from the environment rather than written in the file."""
    found = list(_interpolations(doc))
    required = {name for name, op, _ in found if op in (":?", "?")}
    problems = []
    for name, op, arg in found:
        if name in required and op in (":-", "-"):
            problems.append(f"${{{name}}} is required elsewhere but has the default {arg!r} here")
        if _SECRET_NAME.search(name) and op not in (":?", "?"):
            problems.append(f"secret ${{{name}{op}{arg}}} is not required with `:?`")
    hub = _services(doc).get(HUB, {})
    env = _environment(hub)
    for key in ("RASA_TOKEN", "SERVICE_TOKEN", "SESSION_SECRET"):
        value = env.get(key, "")
        match = _INTERPOLATION.fullmatch(value)
        if not match or match["op"] != ":?":
            problems.append(f"hub: {key}={value!r} must be exactly ${{{key}:?...}}")
    return problems


CHECKS: tuple[Callable[[dict[str, Any], Path], list[str]], ...] = (
    check_images_and_builds,
    check_hub_urls,
    check_depends_on_targets_exist,
    check_dependencies_have_healthchecks,
    check_hub_replicas,
    check_rasa_not_published,
    check_named_volumes_declared,
    check_proxy_config,
    check_required_secrets,
)


def compose_problems(doc: dict[str, Any], root: Path) -> list[str]:
    """Every problem found in a parsed compose document whose relative paths start at ``root``."""
    problems: list[str] = []
    for check in CHECKS:
        problems.extend(check(doc, root))
    return problems


# ---------------------------------------------------------------------------------------------
# Tests on the real file
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load_compose()


def _assert_none(problems: list[str]) -> None:
    assert not problems, "docker-compose.yml:\n  " + "\n  ".join(problems)


def test_expected_services_exist(doc: dict[str, Any]) -> None:
    expected = {PROXY, HUB, "migrate", POSTGRES, REDIS, RASA, "actions"}
    missing = expected - set(_services(doc))
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_every_service_has_an_image_or_a_buildable_dockerfile(doc: dict[str, Any]) -> None:
    _assert_none(check_images_and_builds(doc, ROOT))


def test_hub_urls_point_at_the_services(doc: dict[str, Any]) -> None:
    _assert_none(check_hub_urls(doc, ROOT))


def test_depends_on_names_existing_services(doc: dict[str, Any]) -> None:
    _assert_none(check_depends_on_targets_exist(doc, ROOT))


def test_depended_on_services_have_healthchecks(doc: dict[str, Any]) -> None:
    _assert_none(check_dependencies_have_healthchecks(doc, ROOT))


def test_hub_waits_for_postgres_redis_and_migrations(doc: dict[str, Any]) -> None:
    deps = _depends_on(_services(doc)[HUB])
    assert deps.get(POSTGRES) == "service_healthy", f"hub must wait for postgres to be healthy: {deps}"
    assert deps.get(REDIS) == "service_healthy", f"hub must wait for redis to be healthy: {deps}"
    assert deps.get("migrate") == "service_completed_successfully", f"hub must wait for migrate: {deps}"


def test_hub_has_several_replicas(doc: dict[str, Any]) -> None:
    _assert_none(check_hub_replicas(doc, ROOT))


def test_rasa_publishes_no_host_port(doc: dict[str, Any]) -> None:
    _assert_none(check_rasa_not_published(doc, ROOT))


def test_named_volumes_are_declared(doc: dict[str, Any]) -> None:
    _assert_none(check_named_volumes_declared(doc, ROOT))


def test_proxy_config_exists_and_proxies_websockets_to_the_hub(doc: dict[str, Any]) -> None:
    _assert_none(check_proxy_config(doc, ROOT))


def test_required_secrets_have_no_defaults(doc: dict[str, Any]) -> None:
    _assert_none(check_required_secrets(doc, ROOT))


def test_the_whole_file_has_no_problems(doc: dict[str, Any]) -> None:
    _assert_none(compose_problems(doc, ROOT))


def test_no_env_file_ships_secret_values() -> None:
    """Compose reads .env beside the file; a committed one would quietly fill the required secrets."""
    env_file = ROOT / ".env"
    if not env_file.exists():
        return
    assigned = {line.split("=", 1)[0].strip() for line in env_file.read_text().splitlines() if "=" in line}
    leaked = sorted(name for name in assigned if _SECRET_NAME.search(name))
    assert not leaked, f".env sets secrets {leaked}; pass them from the deploy environment instead"


# ---------------------------------------------------------------------------------------------
# The checker on broken copies: each mutation must be flagged
# ---------------------------------------------------------------------------------------------


def _remove_postgres_healthcheck(d: dict[str, Any]) -> None:
    del d["services"][POSTGRES]["healthcheck"]


def _point_database_at_localhost(d: dict[str, Any]) -> None:
    env = d["services"][HUB]["environment"]
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("@postgres:", "@localhost:")


def _wrong_redis_port(d: dict[str, Any]) -> None:
    d["services"][HUB]["environment"]["REDIS_URL"] = "redis://redis:6380/0"


def _rasa_url_at_unknown_host(d: dict[str, Any]) -> None:
    d["services"][HUB]["environment"]["RASA_URL"] = "http://bot:5005"


def _depend_on_missing_service(d: dict[str, Any]) -> None:
    d["services"][HUB]["depends_on"]["elasticsearch"] = {"condition": "service_started"}


def _single_hub(d: dict[str, Any]) -> None:
    d["services"][HUB]["deploy"]["replicas"] = 1


def _publish_rasa(d: dict[str, Any]) -> None:
    d["services"][RASA]["ports"] = ["5005:5005"]


def _undeclared_volume(d: dict[str, Any]) -> None:
    del d["volumes"]["pgdata"]


def _missing_dockerfile(d: dict[str, Any]) -> None:
    d["services"][HUB]["build"] = {"context": ".", "dockerfile": "deploy/nope.Dockerfile"}


def _missing_build_context(d: dict[str, Any]) -> None:
    d["services"]["actions"]["build"] = {"context": "no-such-dir"}


def _default_for_secret(d: dict[str, Any]) -> None:
    d["services"][HUB]["environment"]["SESSION_SECRET"] = "${SESSION_SECRET:-changeme}"


def _literal_secret(d: dict[str, Any]) -> None:
    d["services"][HUB]["environment"]["SERVICE_TOKEN"] = "hunter2"


def _missing_nginx_conf(d: dict[str, Any]) -> None:
    d["services"][PROXY]["volumes"] = ["./deploy/missing-nginx.conf:/etc/nginx/nginx.conf:ro"]


def _disable_redis_healthcheck(d: dict[str, Any]) -> None:
    d["services"][REDIS]["healthcheck"] = {"disable": True}


def _no_image_no_build(d: dict[str, Any]) -> None:
    del d["services"][POSTGRES]["image"]


BREAKAGES = {
    "postgres without healthcheck": (_remove_postgres_healthcheck, "postgres"),
    "DATABASE_URL at localhost": (_point_database_at_localhost, "DATABASE_URL"),
    "REDIS_URL on the wrong port": (_wrong_redis_port, "REDIS_URL"),
    "RASA_URL at an unknown host": (_rasa_url_at_unknown_host, "RASA_URL"),
    "depends_on a missing service": (_depend_on_missing_service, "elasticsearch"),
    "a single hub": (_single_hub, "replica"),
    "rasa published": (_publish_rasa, "rasa publishes"),
    "volume not declared": (_undeclared_volume, "pgdata"),
    "dockerfile missing": (_missing_dockerfile, "nope.Dockerfile"),
    "build context missing": (_missing_build_context, "no-such-dir"),
    "secret with a default": (_default_for_secret, "SESSION_SECRET"),
    "secret written in the file": (_literal_secret, "SERVICE_TOKEN"),
    "nginx.conf missing": (_missing_nginx_conf, "missing-nginx.conf"),
    "redis healthcheck disabled": (_disable_redis_healthcheck, "redis"),
    "postgres without image": (_no_image_no_build, "postgres"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_checker_flags_a_broken_copy(doc: dict[str, Any], breakage: str) -> None:
    mutate, expected_word = BREAKAGES[breakage]
    broken = copy.deepcopy(doc)
    mutate(broken)
    problems = compose_problems(broken, ROOT)
    assert problems, f"compose_problems found nothing wrong after: {breakage}"
    assert any(expected_word in p for p in problems), (
        f"after {breakage!r}, no problem mentions {expected_word!r}: {problems}"
    )
    assert compose_problems(doc, ROOT) == [], "the mutation leaked into the original document"


def test_checker_flags_nginx_conf_without_websocket_upgrade(doc: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    stripped = "\n".join(line for line in conf.splitlines() if "upgrade" not in line.lower())
    (tmp_path / "deploy" / "nginx.conf").write_text(stripped, encoding="utf-8")
    problems = check_proxy_config(doc, tmp_path)
    assert any("'Upgrade'" in p for p in problems), f"a conf without Upgrade headers was not flagged: {problems}"


def test_healthcheck_healthy_condition_requires_a_healthcheck() -> None:
    """A minimal document: a service waited on as healthy without a healthcheck is flagged."""
    minimal = {
        "services": {
            "a": {"image": "x", "depends_on": {"b": {"condition": "service_healthy"}}},
            "b": {"image": "y"},
            "job": {"image": "z"},
            "c": {"image": "x", "depends_on": {"job": {"condition": "service_completed_successfully"}}},
        }
    }
    problems = check_dependencies_have_healthchecks(minimal, ROOT)
    assert problems == ["service 'a' depends on 'b' (service_healthy), which has no healthcheck"], problems


def test_a_wrong_twilio_setting_stops_the_start_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest as _pytest

    from contact_center.app import create_app
    from contact_center.settings import Settings
    from contact_center.twilio_wiring import TwilioConfigError

    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_NUMBERS": "+15005550006=support", "PUBLIC_BASE_URL": "https://hub.example.com"}
    settings = Settings.from_env({**env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"})
    with _pytest.raises(TwilioConfigError, match="TWILIO_AUTH_TOKEN"):
        create_app(settings)
    bad = Settings.from_env({**env, "TWILIO_AUTH_TOKEN": "x" * 32, "TWILIO_NUMBERS": "+1555=support"})
    with _pytest.raises(TwilioConfigError, match="TWILIO_NUMBERS"):
        create_app(bad)
