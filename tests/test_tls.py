"""TLS on REST and gRPC (`service.enable_tls`, `tls.*`), mutual TLS
(`service.verify_https_client_certificate`), certificate reload (`tls.cert_ttl`) and mutual
TLS between cluster peers (`cluster.p2p.enable_tls`), with certificates made here by the
`cryptography` package."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from tests.cluster_harness import Cluster, eventually, running_etcd
from tests.conftest import TARGET, ServerProcess, free_port, running

pytestmark = [
    pytest.mark.server_only(reason="TLS"),
    pytest.mark.skipif(TARGET != "server", reason="starts its own servers"),
]


@dataclass
class Pem:
    cert: bytes
    key: bytes


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(common: str) -> tuple[Pem, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return pem_of(cert, key), cert, key


def make_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common: str,
    server: bool,
    client_too: bool = False,
) -> Pem:
    """A certificate for a server (`server`, named localhost / 127.0.0.1) or a client; a
    server's `client_too` also authenticates it as a client (a cluster peer's, which both
    serves and calls)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [
                    *([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH] if server else []),
                    *(
                        [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
                        if client_too or not server
                        else []
                    ),
                ]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return pem_of(builder.sign(ca_key, hashes.SHA256()), key)


def pem_of(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    return Pem(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass
class Pki:
    dir: Path
    ca: Pem
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    client: Pem

    @property
    def ca_path(self) -> Path:
        return self.dir / "ca.pem"

    def install_server(self, pem: Pem) -> None:
        (self.dir / "cert.pem").write_bytes(pem.cert)
        (self.dir / "key.pem").write_bytes(pem.key)

    def context(self, with_client_cert: bool = False, ca: bytes | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=(ca or self.ca.cert).decode())
        if with_client_cert:
            (self.dir / "client.pem").write_bytes(self.client.cert)
            (self.dir / "client-key.pem").write_bytes(self.client.key)
            ctx.load_cert_chain(self.dir / "client.pem", self.dir / "client-key.pem")
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("tls")
    ca, ca_cert, ca_key = make_ca("Tessera test CA")
    (base / "ca.pem").write_bytes(ca.cert)
    pki = Pki(base, ca, ca_cert, ca_key, make_leaf(ca_cert, ca_key, "client", server=False))
    pki.install_server(make_leaf(ca_cert, ca_key, "localhost", server=True))
    return pki


def tls_server(pki: Pki, base: Path, mutual: bool, ttl: int | None) -> ServerProcess:
    env = {
        "QDRANT__SERVICE__ENABLE_TLS": "true",
        "QDRANT__TLS__CERT": str(pki.dir / "cert.pem"),
        "QDRANT__TLS__KEY": str(pki.dir / "key.pem"),
        "QDRANT__TLS__CA_CERT": str(pki.ca_path),
        "QDRANT__TLS__CERT_TTL": str(ttl) if ttl else "null",
    }
    if mutual:
        env["QDRANT__SERVICE__VERIFY_HTTPS_CLIENT_CERTIFICATE"] = "true"
    return ServerProcess(
        base / "storage",
        base / "server.log",
        grpc_port=free_port(),
        env=env,
        tls={"verify": pki.context(with_client_cert=mutual)},
    )


@pytest.fixture(scope="module")
def https(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running(tls_server(pki, tmp_path_factory.mktemp("https"), mutual=False, ttl=1)) as server:
        yield server


def grpc_channel(pki: Pki, port: int, client_cert: bool, ca: bytes | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca or pki.ca.cert,
        private_key=pki.client.key if client_cert else None,
        certificate_chain=pki.client.cert if client_cert else None,
    )
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def test_rest_and_grpc_over_tls(pki: Pki, https: ServerProcess) -> None:
    assert https.url.startswith("https://")
    # (qdrant-client's version check runs in a thread of its own without `verify`.)
    client = QdrantClient(
        url=https.url, verify=pki.context(), timeout=30, check_compatibility=False
    )
    client.create_collection(
        "tls", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    client.upsert("tls", points=[models.PointStruct(id=1, vector=[1, 0])])
    assert client.count("tls").count == 1
    client.close()
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
        httpx.get(f"http://127.0.0.1:{https.port}/collections", timeout=5)
    with pytest.raises(httpx.ConnectError):  # nor to a client that does not trust the CA
        httpx.get(f"{https.url}/collections", timeout=5)
    with grpc_channel(pki, https.grpc_port, client_cert=False) as channel:
        listed = pb.CollectionsStub(channel).List(pb.ListCollectionsRequest(), timeout=10)
        assert [c.name for c in listed.collections] == ["tls"]
    with grpc.insecure_channel(f"127.0.0.1:{https.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as raised:
            pb.CollectionsStub(channel).List(pb.ListCollectionsRequest(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    log = https.log_path.read_text()
    assert "TLS: on, certificate reload every 1 s" in log
    assert f"REST API: https://127.0.0.1:{https.port}" in log


def test_certificate_is_reloaded_after_its_ttl(pki: Pki, https: ServerProcess) -> None:
    """A certificate from another CA replaces the served one on disk: within the TTL (1 s),
    new connections on both APIs get it without a restart."""
    new_ca, new_ca_cert, new_ca_key = make_ca("Rotated CA")
    pki.install_server(make_leaf(new_ca_cert, new_ca_key, "localhost", server=True))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with httpx.Client(verify=pki.context(ca=new_ca.cert), timeout=5) as http:
                    assert http.get(f"{https.url}/readyz").status_code == 200
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        while True:
            try:
                with grpc_channel(pki, https.grpc_port, False, ca=new_ca.cert) as channel:
                    pb.QdrantStub(channel).HealthCheck(pb.HealthCheckRequest(), timeout=5)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):  # the old certificate is gone
            httpx.get(f"{https.url}/readyz", verify=pki.context(), timeout=5)
    finally:
        pki.install_server(make_leaf(pki.ca_cert, pki.ca_key, "localhost", server=True))
    assert "TLS certificate reloaded" in https.log_path.read_text()


def test_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    server = tls_server(pki, tmp_path, mutual=True, ttl=None)
    server.start()
    try:
        with httpx.Client(verify=pki.context(with_client_cert=True), timeout=10) as http:
            assert http.get(f"{server.url}/collections").status_code == 200
        with (
            pytest.raises(httpx.HTTPError),  # no client certificate: no connection
            httpx.Client(verify=pki.context(), timeout=5) as http,
        ):
            http.get(f"{server.url}/collections")
        # gRPC asks for no client certificate, as Qdrant's external gRPC server (its own
        # identity only): with one or without, the call goes through.
        for client_cert in (True, False):
            with grpc_channel(pki, server.grpc_port, client_cert=client_cert) as channel:
                pb.CollectionsStub(channel).List(pb.ListCollectionsRequest(), timeout=10)
    finally:
        server.stop()
    assert "TLS: on (mutual on REST: client certificates required)" in server.log_path.read_text()


def test_unusable_certificate_stops_start_up(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "broken.pem").write_text("not a certificate")
    server = tls_server(pki, tmp_path, mutual=False, ttl=None)
    server.env["QDRANT__TLS__CERT"] = str(tmp_path / "broken.pem")
    with pytest.raises(RuntimeError, match="exited with code 2"):
        server.start(timeout=20)
    assert "TLS certificate or key unusable" in server.log_path.read_text()


def test_ca_cert_is_read_only_to_verify_clients(pki: Pki, tmp_path: Path) -> None:
    """Qdrant's stock config names a `tls.ca_cert`; a server that does not verify client
    certificates never reads it, so a missing one does not stop it (Tessera failed to
    start)."""
    server = tls_server(pki, tmp_path, mutual=False, ttl=None)
    server.env["QDRANT__TLS__CA_CERT"] = str(tmp_path / "no-such-ca.pem")
    with running(server):
        answer = httpx.get(server.url + "/", verify=pki.context(with_client_cert=False))
        assert answer.status_code == 200


def test_cluster_peers_talk_over_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    """`cluster.p2p.enable_tls`: peers call each other over TLS with their own certificate
    and take only those `tls.ca_cert` signed, as Qdrant's internal gRPC; `--uri` shows as
    Qdrant keeps it (`https://127.0.0.1:port/`). Before, the key was ignored: the port spoke
    plain HTTP while the peers called its https URI, and every call across peers failed."""
    peer = make_leaf(pki.ca_cert, pki.ca_key, "localhost", server=True, client_too=True)
    (tmp_path / "peer.pem").write_bytes(peer.cert)
    (tmp_path / "peer-key.pem").write_bytes(peer.key)
    env = {
        "QDRANT__CLUSTER__P2P__ENABLE_TLS": "true",
        "QDRANT__TLS__CERT": str(tmp_path / "peer.pem"),
        "QDRANT__TLS__KEY": str(tmp_path / "peer-key.pem"),
        "QDRANT__TLS__CA_CERT": str(pki.ca_path),
    }
    (tmp_path / "etcd").mkdir()
    with running_etcd(tmp_path / "etcd") as etcd:
        group = Cluster(tmp_path / "cluster", etcd, "/tessera-tls/", env=env, scheme="https")
        try:
            first, second = group.start_nodes(2)
            peers = httpx.get(f"{first.url}/cluster", timeout=10).json()["result"]["peers"]
            uris = [p["uri"] for p in peers.values()]
            assert len(uris) == 2
            assert all(u.startswith("https://127.0.0.1:") and u.endswith("/") for u in uris)
            client = QdrantClient(url=first.url, timeout=30, check_compatibility=False)
            client.create_collection(
                "t",
                vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
                shard_number=2,
            )
            points = [models.PointStruct(id=i, vector=[1.0, i]) for i in range(20)]
            client.upsert("t", points, wait=True)
            other = QdrantClient(url=second.url, timeout=30, check_compatibility=False)
            # Each node holds one shard: counting all 20 takes a call across peers.
            eventually(lambda: other.count("t").count == 20 or None, "count through peer 2")
            assert client.count("t").count == 20
            client.close()
            other.close()
            # A caller without a certificate signed by the CA is refused at the handshake.
            with pytest.raises(httpx.HTTPError):
                httpx.post(
                    f"{uris[0]}p2p/v1/peer",
                    content=b"{}",
                    verify=pki.context(with_client_cert=False),
                    timeout=5,
                )
        finally:
            group.stop()
