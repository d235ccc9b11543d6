"""The exporter's server: landing page, /metrics, web config, real TLS, mTLS and basic auth."""

from __future__ import annotations

import base64
import datetime
import http.client
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily

from exporter.web import (
    ExporterServer,
    WebConfig,
    WebConfigError,
    load_web_config,
    parse_listen_address,
    parse_web_config,
)


@dataclass
class Pem:
    cert: Path
    key: Path


def make_cert(
    tmp_path: Path,
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Pem]:
    """Make a CA (issuer None), a server certificate for 127.0.0.1, or a client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    pem = Pem(tmp_path / f"{name}.crt", tmp_path / f"{name}.key")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pem.key.chmod(0o600)
    return cert, key, pem


@dataclass
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    stranger: Pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key, ca = make_cert(tmp, "ca", None, server=False)
    _, _, server = make_cert(tmp, "server", (ca_cert, ca_key), server=True)
    _, _, client = make_cert(tmp, "client", (ca_cert, ca_key), server=False)
    other_cert, other_key, _ = make_cert(tmp, "other-ca", None, server=False)
    _, _, stranger = make_cert(tmp, "stranger", (other_cert, other_key), server=False)
    return Pki(ca, server, client, stranger)


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()

    class One:
        def collect(self) -> list[GaugeMetricFamily]:
            return [GaugeMetricFamily("test_up", "Always 1.", value=1)]

    registry.register(One())  # type: ignore[arg-type]
    return registry


Serve = Callable[..., ExporterServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers on free ports; stop them all at the end."""
    servers: list[ExporterServer] = []

    def start(config: WebConfig | None = None, telemetry_path: str = "/metrics") -> ExporterServer:
        server = ExporterServer(("127.0.0.1", 0), registry(), config, telemetry_path)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def get(
    server: ExporterServer,
    path: str,
    context: ssl.SSLContext | None = None,
    auth: tuple[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.server_address[:2]
    if context is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(host, port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def client_context(pki: Pki, cert: Pem | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca.cert)
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    return context


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_landing_page_links_to_the_metrics(serve: Serve) -> None:
    server = serve(telemetry_path="/probe")
    status, headers, body = get(server, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'<a href="/probe">' in body


def test_metrics_are_served_in_the_text_format(serve: Serve) -> None:
    status, headers, body = get(serve(), "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"test_up 1.0\n" in body


def test_unknown_paths_are_not_found(serve: Serve) -> None:
    assert get(serve(), "/nope")[0] == 404


def test_listen_addresses_parse_as_prometheus_writes_them() -> None:
    assert parse_listen_address("127.0.0.1:9742") == ("127.0.0.1", 9742)
    assert parse_listen_address("[::1]:9742") == ("::1", 9742)
    assert parse_listen_address(":9742") == ("", 9742)
    for bad in ("9742", "localhost:http", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="host:port"):
            parse_listen_address(bad)


def test_an_empty_web_config_means_plain_http_without_auth() -> None:
    assert parse_web_config(None) == WebConfig()


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        ({"http_server_config": {}}, "http_server_config", "is not supported"),
        ({"tls_server_config": {"key_file": "k"}}, "tls_server_config.cert_file", "is missing"),
        (
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": "RequestClientCert",
                }
            },
            "tls_server_config.client_auth_type",
            "is not supported",
        ),
        (
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": "RequireAndVerifyClientCert",
                }
            },
            "tls_server_config.client_ca_file",
            "is required",
        ),
        (
            {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_ca_file": "ca"}},
            "tls_server_config.client_auth_type",
            "client_ca_file is set",
        ),
        ({"tls_server_config": {"cert_file": "c", "key_file": "k", "min_version": "SSL3"}}, "", "is unknown"),
        ({"basic_auth_users": {"prometheus": "hunter2"}}, "basic_auth_users.prometheus", "not a bcrypt hash"),
        (
            {"basic_auth_users": {"prometheus": "$2b$12$cut"}},
            "basic_auth_users.prometheus",
            "not a bcrypt hash",
        ),
    ],
)
def test_bad_web_configs_name_the_key_and_the_problem(data: dict, key: str, problem: str) -> None:
    with pytest.raises(WebConfigError, match=problem) as raised:
        parse_web_config(data, "/etc/jada-exporter/web.yml")
    assert raised.value.path == "/etc/jada-exporter/web.yml"
    assert key in raised.value.key
    assert "hunter2" not in str(raised.value)


def test_a_web_config_whose_certificate_does_not_load_is_an_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, f"tls_server_config:\n  cert_file: {tmp_path}/none.crt\n  key_file: {tmp_path}/k\n"
    )
    with pytest.raises(WebConfigError, match="does not load"):
        load_web_config(path)


def test_unparsable_yaml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="not valid YAML"):
        load_web_config(write_config(tmp_path, "tls_server_config: [\n"))


def test_metrics_are_served_over_tls(serve: Serve, pki: Pki, tmp_path: Path) -> None:
    path = write_config(
        tmp_path, f"tls_server_config:\n  cert_file: {pki.server.cert}\n  key_file: {pki.server.key}\n"
    )
    server = serve(load_web_config(path))
    assert server.url.startswith("https://127.0.0.1:")
    status, _, body = get(server, "/metrics", client_context(pki))
    assert status == 200 and b"test_up 1.0" in body
    # A client that does not trust the server's CA refuses it.
    with pytest.raises(ssl.SSLCertVerificationError):
        get(server, "/metrics", ssl.create_default_context())


def test_mtls_admits_a_client_certificate_from_the_ca_and_refuses_others(
    serve: Serve,
    pki: Pki,
    tmp_path: Path,
) -> None:
    path = write_config(
        tmp_path,
        "tls_server_config:\n"
        f"  cert_file: {pki.server.cert}\n  key_file: {pki.server.key}\n"
        f"  client_ca_file: {pki.ca.cert}\n  client_auth_type: RequireAndVerifyClientCert\n",
    )
    server = serve(load_web_config(path))

    assert get(server, "/metrics", client_context(pki, pki.client))[0] == 200
    for refused in (client_context(pki), client_context(pki, pki.stranger)):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            get(server, "/metrics", refused)
    # Refused handshakes do not take the server down.
    assert get(server, "/metrics", client_context(pki, pki.client))[0] == 200


def test_basic_auth_admits_the_right_password_only(serve: Serve, pki: Pki, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = write_config(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.server.cert}\n  key_file: {pki.server.key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n",
    )
    server = serve(load_web_config(path))
    context = client_context(pki)

    assert get(server, "/metrics", context, ("prometheus", "s3cret"))[0] == 200
    # Twice: the second answer comes from the cache and must agree.
    assert get(server, "/metrics", context, ("prometheus", "s3cret"))[0] == 200
    status, headers, _ = get(server, "/metrics", context, ("prometheus", "wrong"))
    assert status == 401 and headers["WWW-Authenticate"] == "Basic"
    assert get(server, "/metrics", context, ("someone", "s3cret"))[0] == 401
    assert get(server, "/metrics", context)[0] == 401
    assert get(server, "/", context)[0] == 401


def test_verify_if_given_admits_clients_without_a_certificate_but_not_with_a_foreign_one(
    serve: Serve,
    pki: Pki,
    tmp_path: Path,
) -> None:
    path = write_config(
        tmp_path,
        "tls_server_config:\n"
        f"  cert_file: {pki.server.cert}\n  key_file: {pki.server.key}\n"
        f"  client_ca_file: {pki.ca.cert}\n  client_auth_type: VerifyClientCertIfGiven\n",
    )
    server = serve(load_web_config(path))

    assert get(server, "/metrics", client_context(pki))[0] == 200
    assert get(server, "/metrics", client_context(pki, pki.client))[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(server, "/metrics", client_context(pki, pki.stranger))
