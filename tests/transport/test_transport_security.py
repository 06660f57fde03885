"""Who gets in: tokens, TLS, mutual TLS, mismatches, and refusing unsafe exposure."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from transport_testlib import Collector, fast_config, make_episode, wait_until

from hilrl.config.loader import ConfigError
from hilrl.config.transport import TransportConfig
from hilrl.transport import (
    ActorClient,
    AuthenticationError,
    HandshakeRefused,
    LearnerServer,
    LearnerUnreachable,
)
from hilrl.transport.security import DevCertificates, generate_dev_certificates

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    pytest.importorskip("cryptography")
    return generate_dev_certificates(tmp_path_factory.mktemp("certs"))


def serve(cfg: TransportConfig, collector: Collector, arch_hash: str = "") -> LearnerServer:
    return LearnerServer(
        cfg, collector.on_transitions, collector.on_episode, run_id="run", arch_hash=arch_hash
    ).start()


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def clients() -> Iterator[list[ActorClient]]:
    made: list[ActorClient] = []
    yield made
    for c in made:
        c.close(1.0)


def client(
    clients: list[ActorClient],
    cfg: TransportConfig,
    actor_id: str = "a",
    run_id: str = "run",
    arch_hash: str = "",
) -> ActorClient:
    clients.append(ActorClient(cfg, actor_id, run_id, arch_hash))
    return clients[-1]


def wait_for_failed_attempt(c: ActorClient) -> None:
    """Wait for the first failed connection attempt, so connect() can report its reason."""
    assert wait_until(lambda: bool(c.stats().last_error), 20.0)


def test_token_protects_every_call(
    collector: Collector,
    clients: list[ActorClient],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    server = serve(fast_config(0, token_file=str(token_file)), collector)
    try:
        good = client(clients, fast_config(server.port, token="s3cret-token"), "good")
        good.connect(5.0)
        good.put_transitions(make_episode(0, 0, 5))
        assert good.flush(10.0)
        assert collector.count("good") == 5

        with caplog.at_level(logging.WARNING, logger="hilrl.transport.security"):
            for actor_id, token in (("wrong", "guess"), ("none", "")):
                bad = client(clients, fast_config(server.port, token=token), actor_id)
                with pytest.raises(AuthenticationError, match=r"transport\.token"):
                    bad.connect(5.0)
                with pytest.raises(AuthenticationError):  # the control loop hears it too
                    bad.put_transitions(make_episode(0, 0, 1))
        logged = caplog.text
        assert "'wrong'" in logged and "a wrong token" in logged and "127.0.0.1" in logged
        assert "'none'" in logged and "no token" in logged

        # Streaming calls are checked too, not only the handshake.
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        from hilrl.transport.proto import hilrl_transport_pb2 as pb
        from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc

        stub = pb_grpc.LearnerStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.StreamParameters(pb.ParameterRequest(have_version=-1), timeout=2.0))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            list(stub.SendData(iter([pb.Frame()]), timeout=2.0))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The standard health check stays open for probes.
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2.0
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
    finally:
        server.stop()


def test_tls_with_client_certificates(
    collector: Collector, clients: list[ActorClient], certs: DevCertificates, tmp_path: Path
) -> None:
    server_cfg = fast_config(
        0,
        tls=True,
        tls_cert=str(certs.server_cert),
        tls_key=str(certs.server_key),
        tls_ca=str(certs.ca_cert),
    )
    server = serve(server_cfg, collector)
    try:
        mtls = fast_config(
            server.port,
            tls=True,
            tls_ca=str(certs.ca_cert),
            tls_cert=str(certs.client_cert),
            tls_key=str(certs.client_key),
        )
        ok = client(clients, mtls, "ok")
        ok.connect(5.0)
        ok.put_transitions(make_episode(0, 0, 4))
        assert ok.flush(10.0) and collector.count("ok") == 4

        # Each TLS mismatch is named within seconds, from the call the actor loop waits in
        # (before, wait_for_weights gave up only after its whole timeout: "no weights").
        other = generate_dev_certificates(tmp_path / "other")
        cases = [
            ("plain", fast_config(server.port), r"uses TLS and this actor does not.*tls: true"),
            (
                "nocert",
                fast_config(server.port, tls=True, tls_ca=str(certs.ca_cert)),
                r"requires a client certificate.*tls_cert",
            ),
            (
                "wrongcert",
                fast_config(
                    server.port,
                    tls=True,
                    tls_ca=str(certs.ca_cert),
                    tls_cert=str(other.client_cert),
                    tls_key=str(other.client_key),
                ),
                r"refused this actor's client certificate",
            ),
            (
                "wrongca",
                fast_config(server.port, tls=True, tls_ca=str(other.ca_cert)),
                r"cannot verify with transport\.tls_ca",
            ),
        ]
        for actor_id, cfg, message in cases:
            c = client(clients, cfg, actor_id)
            started = time.monotonic()
            with pytest.raises(LearnerUnreachable, match=message):
                c.wait_for_weights(-1, timeout_s=300.0)
            assert time.monotonic() - started < 15.0
        assert all(collector.count(actor_id) == 0 for actor_id, _, _ in cases)
    finally:
        server.stop()


def test_tls_client_against_plaintext_server_gets_a_hint(
    collector: Collector, clients: list[ActorClient], certs: DevCertificates
) -> None:
    server = serve(fast_config(0), collector)
    try:
        tls = client(clients, fast_config(server.port, tls=True, tls_ca=str(certs.ca_cert)), "tls")
        started = time.monotonic()
        with pytest.raises(LearnerUnreachable, match=r"does not speak TLS.*tls: false"):
            tls.wait_for_weights(-1, timeout_s=300.0)
        assert time.monotonic() - started < 15.0
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"arch_hash": "other-arch"}, "policy architecture differs"),
        ({"run_id": "other-run"}, "learner's run id"),
    ],
)
def test_mismatch_is_refused_with_what_to_fix(
    collector: Collector,
    clients: list[ActorClient],
    caplog: pytest.LogCaptureFixture,
    kwargs: dict[str, str],
    reason: str,
) -> None:
    server = serve(fast_config(0), collector, arch_hash="arch-v1")
    try:
        ids = {"run_id": "run", "arch_hash": "arch-v1", **kwargs}
        c = client(clients, fast_config(server.port), "m", ids["run_id"], ids["arch_hash"])
        with (
            caplog.at_level(logging.WARNING, logger="hilrl.transport.server"),
            pytest.raises(HandshakeRefused, match=reason) as err,
        ):
            c.connect(5.0)
        assert not err.value.retryable
        assert "'m'" in caplog.text and reason in caplog.text and "127.0.0.1" in caplog.text
    finally:
        server.stop()


def test_learner_full_is_retried_until_a_slot_frees(
    collector: Collector, clients: list[ActorClient]
) -> None:
    server = serve(fast_config(0, max_actors=1), collector)
    try:
        first = client(clients, fast_config(server.port), "first")
        first.connect(5.0)
        second = client(clients, fast_config(server.port), "second")
        with pytest.raises(LearnerUnreachable, match="max_actors"):
            wait_for_failed_attempt(second)
            second.connect(0.1)
        assert first.close(5.0)
        second.connect(5.0)
    finally:
        server.stop()


def test_exposure_without_protection_is_refused(tmp_path: Path, certs: DevCertificates) -> None:
    c = Collector()
    with pytest.raises(ConfigError, match="without TLS"):
        LearnerServer(TransportConfig(host="0.0.0.0", port=0), c.on_transitions, c.on_episode)
    with pytest.raises(ConfigError, match="clear text"):
        LearnerServer(
            TransportConfig(host="0.0.0.0", port=0, token="t"), c.on_transitions, c.on_episode
        )
    tls_only = TransportConfig(
        host="0.0.0.0",
        port=0,
        tls=True,
        tls_cert=str(certs.server_cert),
        tls_key=str(certs.server_key),
    )
    with pytest.raises(ConfigError, match="tls_ca"):
        LearnerServer(tls_only, c.on_transitions, c.on_episode)
    # Explicit opt-in, or TLS plus a token, is accepted.
    LearnerServer(replace(tls_only, token="t"), c.on_transitions, c.on_episode)
    LearnerServer(
        TransportConfig(host="0.0.0.0", port=0, allow_insecure=True), c.on_transitions, c.on_episode
    )


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"port": 70000}, "port"),
        ({"token": "a", "token_file": "/nonexistent"}, "token"),
        ({"tls_cert": "x.pem"}, "tls_key"),
        ({"tls_ca": "ca.pem"}, "tls_ca"),
        ({"max_message_bytes": 1024 * 1024, "chunk_bytes": 1024 * 1024}, "max_message_bytes"),
        ({"backoff_jitter": 1.5}, "backoff_jitter"),
        ({"batch_size": 0}, "batch_size"),
        ({"memory_backlog_messages": 2, "max_inflight_messages": 8}, "memory_backlog_messages"),
    ],
)
def test_config_validation_names_the_field(fields: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError) as err:
        replace(TransportConfig(), **fields).validate()  # type: ignore[arg-type]
    assert err.value.field == name


def test_a_port_that_closes_connections_is_not_taken_for_tls() -> None:
    """A tunnel or proxy whose learner is down accepts and closes at once (an EOF, no
    TLS alert): that proves nothing and must not stop the actor for good."""
    import socket
    import threading

    from hilrl.transport.diagnose import tls_mismatch

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def close_everything() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.close()  # a FIN, like ssh -L / kubectl port-forward without a backend

    thread = threading.Thread(target=close_everything, daemon=True)
    thread.start()
    try:
        cfg = fast_config(port)
        assert tls_mismatch(cfg, "UNAVAILABLE: ipv4:127.0.0.1: Socket closed") == ""
    finally:
        stop.set()
        thread.join(2)
        listener.close()
