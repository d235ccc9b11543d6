"""Serve the landing page and /metrics, with TLS and basic auth from an exporter-toolkit web config.

The ``--web.config.file`` format is the Prometheus exporter-toolkit's::

    tls_server_config:
      cert_file: /etc/jada-exporter/tls.crt
      key_file: /etc/jada-exporter/tls.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: /etc/jada-exporter/clients-ca.crt
    basic_auth_users:
      prometheus: $2b$12$...   # bcrypt hash
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import logging
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bcrypt
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from orchestrator.config import ConfigError

logger = logging.getLogger(__name__)

# exporter-toolkit's client_auth_type values that Python's ssl module can honour. It cannot
# ask for a client certificate without verifying it, so RequestClientCert and
# RequireAnyClientCert have no equivalent here.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"}
BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
# A slow or silent client gets this long for the TLS handshake and each request.
CONNECTION_TIMEOUT_SECONDS = 30.0
# Checked credentials are remembered (by digest) because bcrypt costs ~0.1-0.3 s a check,
# which would make every scrape that slow.
AUTH_CACHE_SIZE = 256


class WebConfigError(ConfigError):
    """A web config problem, phrased for the person who has to fix it."""


@dataclass(frozen=True)
class TLSConfig:
    """The TLS part of a web config."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"


@dataclass(frozen=True)
class WebConfig:
    """A validated web config: optional TLS and basic-auth users with bcrypt hashes."""

    tls: TLSConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)


def parse_web_config(data: Any, path: Path | str = "<web config>") -> WebConfig:
    """Validate a parsed exporter-toolkit web config into a WebConfig."""
    if data is None:
        return WebConfig()
    if not isinstance(data, dict):
        raise WebConfigError(path, "", "is not a YAML mapping", "see the exporter-toolkit web config format")
    unknown = sorted(set(data) - {"tls_server_config", "basic_auth_users"})
    if unknown:
        raise WebConfigError(
            path, unknown[0], "is not supported", "use only tls_server_config and basic_auth_users"
        )
    return WebConfig(
        tls=_parse_tls(data.get("tls_server_config"), path),
        users=_parse_users(data.get("basic_auth_users"), path),
    )


def _parse_tls(data: Any, path: Path | str) -> TLSConfig | None:
    if data is None:
        return None
    key = "tls_server_config"
    if not isinstance(data, dict):
        raise WebConfigError(path, key, "is not a mapping", "give cert_file and key_file under it")
    unknown = sorted(set(data) - TLS_KEYS)
    if unknown:
        raise WebConfigError(
            path, f"{key}.{unknown[0]}", "is not supported", f"use only {', '.join(sorted(TLS_KEYS))}"
        )
    for name in ("cert_file", "key_file"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise WebConfigError(path, f"{key}.{name}", "is missing", "give the path of a PEM file")
    auth = data.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            path,
            f"{key}.client_auth_type",
            f"{auth!r} is not supported",
            f"use one of {', '.join(CLIENT_AUTH)}",
        )
    ca = data.get("client_ca_file")
    if auth != "NoClientCert" and not ca:
        raise WebConfigError(
            path,
            f"{key}.client_ca_file",
            f"is required with client_auth_type {auth}",
            "give the client CA's PEM",
        )
    if ca and auth == "NoClientCert":
        raise WebConfigError(
            path,
            f"{key}.client_auth_type",
            "is NoClientCert but client_ca_file is set",
            "set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven",
        )
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        versions[name] = data.get(name, default)
        if versions[name] not in TLS_VERSIONS:
            raise WebConfigError(
                path,
                f"{key}.{name}",
                f"{versions[name]!r} is unknown",
                f"use one of {', '.join(TLS_VERSIONS)}",
            )
    return TLSConfig(
        cert_file=Path(data["cert_file"]),
        key_file=Path(data["key_file"]),
        client_auth_type=auth,
        client_ca_file=Path(ca) if ca else None,
        **versions,
    )


def _parse_users(data: Any, path: Path | str) -> dict[str, bytes]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WebConfigError(
            path, "basic_auth_users", "is not a mapping", "map each user name to a bcrypt hash"
        )
    users = {}
    for user, hashed in data.items():
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            # The value itself is never echoed: it might be a plain password.
            raise WebConfigError(
                path,
                f"basic_auth_users.{user}",
                "is not a bcrypt hash",
                "put its bcrypt hash there (htpasswd -nbBC 10 USER PASSWORD prints one)",
            )
        users[str(user)] = hashed.encode()
    return users


def load_web_config(path: Path | str) -> WebConfig:
    """Read and validate a web config file, and check that its TLS files load."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise WebConfigError(
            path, "", f"cannot be read ({exc.strerror})", "check the path and permissions"
        ) from None
    except yaml.YAMLError as exc:
        raise WebConfigError(path, "", f"is not valid YAML ({exc})", "fix the syntax") from None
    config = parse_web_config(data, path)
    if config.tls is not None:
        ssl_context(config.tls, path)
    return config


def ssl_context(tls: TLSConfig, path: Path | str = "<web config>") -> ssl.SSLContext:
    """Build the server's SSL context from a TLS config."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    key = "tls_server_config"
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(
            path,
            f"{key}.cert_file",
            f"{tls.cert_file} with {tls.key_file} does not load ({exc})",
            "give a PEM pair",
        ) from None
    context.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                path, f"{key}.client_ca_file", f"{tls.client_ca_file} does not load ({exc})", "give a PEM CA"
            ) from None
    return context


def parse_listen_address(text: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port``; empty host means every interface) into host and port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not host:port, e.g. 127.0.0.1:9742")
    return host.removeprefix("[").removesuffix("]"), int(port)


class Authenticator:
    """Check HTTP basic auth against bcrypt hashes, remembering results by digest."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._cache: dict[bytes, bool] = {}
        self._lock = threading.Lock()
        # Unknown users are checked against this so they take as long as known ones; its
        # password is random, and the user check below does not rely on that alone.
        rounds = int(next(iter(self._users.values())).split(b"$")[2]) if self._users else 4
        self._dummy = bcrypt.hashpw(secrets.token_bytes(32).hex().encode(), bcrypt.gensalt(rounds=rounds))

    @property
    def enabled(self) -> bool:
        """Tell whether any users are configured."""
        return bool(self._users)

    def check(self, header: str | None) -> bool:
        """Tell whether an Authorization header carries a configured user's password."""
        if not self._users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(user, self._dummy)
        digest = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed])).digest()
        with self._lock:
            known = self._cache.get(digest)
        if known is None:
            known = bcrypt.checkpw(password.encode(), hashed) and user in self._users
            with self._lock:
                if len(self._cache) >= AUTH_CACHE_SIZE:
                    self._cache.clear()
                self._cache[digest] = known
        return known


class ExporterServer(ThreadingHTTPServer):
    """A threaded HTTP(S) server for the landing page and the metrics."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        web_config: WebConfig | None = None,
        telemetry_path: str = "/metrics",
        web_config_path: Path | str = "<web config>",
    ) -> None:
        web_config = web_config or WebConfig()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.authenticator = Authenticator(web_config.users)
        self.ssl_context = ssl_context(web_config.tls, web_config_path) if web_config.tls else None
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """Return the base URL the server answers on."""
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.ssl_context else 'http'}://{host}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the request's own thread, then serve it."""
        request.settimeout(CONNECTION_TIMEOUT_SECONDS)
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls_socket = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # A client without an acceptable certificate is the client's problem, not ours.
            logger.debug("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()


class _Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    server_version = f"jada-exporter/{__version__}"
    timeout = CONNECTION_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        if not self.server.authenticator.check(self.headers.get("Authorization")):
            self._send(401, "text/plain; charset=utf-8", b"Unauthorized\n", {"WWW-Authenticate": "Basic"})
            return
        path = urlsplit(self.path).path
        if path == self.server.telemetry_path:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(self.server.registry)
            except Exception:
                logger.exception("rendering %s failed", path)
                self._send(500, "text/plain; charset=utf-8", b"error collecting metrics\n")
                return
            self._send(200, content_type, body)
        elif path == "/":
            self._send(200, "text/html; charset=utf-8", _landing_page(self.server.telemetry_path))
        else:
            self._send(404, "text/plain; charset=utf-8", b"Not Found\n")

    def _send(
        self, status: int, content_type: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # One journal line per scrape would drown the journal; requests are logged at debug.
        logger.debug("%s %s", self.address_string(), format % args)


def _landing_page(telemetry_path: str) -> bytes:
    link = html.escape(telemetry_path)
    return (
        "<!DOCTYPE html>\n<html><head><title>jada-exporter</title></head><body>\n"
        f"<h1>jada-exporter {html.escape(__version__)}</h1>\n"
        "<p>The jada-agent sidecar: journald, host, systemd unit and Lightsail as Prometheus metrics.</p>\n"
        f'<p><a href="{link}">Metrics</a></p>\n</body></html>\n'
    ).encode()
