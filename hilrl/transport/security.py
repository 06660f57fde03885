"""Who may talk to the learner: TLS credentials, the shared-token check and exposure rules.

The learner binds to loopback by default. Listening beyond it needs TLS, a token or an
explicit ``allow_insecure`` (the reference transport listened on every interface with no
authentication and unpickled what arrived). The token check runs in a server interceptor,
so it covers unary and streaming calls alike; only the standard health check is exempt,
so load balancers and probes can see the learner without a secret.
"""

from __future__ import annotations

import datetime
import hmac
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from hilrl.config.loader import ConfigError
from hilrl.config.transport import TransportConfig

log = logging.getLogger("hilrl.transport.security")

AUTH_HEADER = "authorization"
ACTOR_HEADER = "x-hilrl-actor"
SESSION_HEADER = "x-hilrl-session"
HEALTH_METHODS = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")


def _read(path: str, field: str) -> bytes:
    p = Path(path).expanduser()
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ConfigError(field, path, f"cannot read: {exc}") from exc


def check_exposure(cfg: TransportConfig) -> None:
    """Refuse to serve beyond loopback without protection, naming the fields to set."""
    if cfg.is_loopback or cfg.allow_insecure:
        return
    if not cfg.tls:
        why = (
            "a token without TLS travels in clear text"
            if cfg.read_token()
            else "anyone on the network could feed the learner"
        )
        raise ConfigError(
            "host",
            cfg.host,
            f"listening beyond loopback without TLS: {why}; set tls: true with tls_cert/tls_key "
            "(and tls_ca for client certificates or a token), or allow_insecure: true on a trusted network",
        )
    if not cfg.tls_ca and not cfg.read_token():
        raise ConfigError(
            "host",
            cfg.host,
            "TLS without client authentication lets anyone connect: set tls_ca (mutual TLS) or token/token_file",
        )


def server_credentials(cfg: TransportConfig) -> grpc.ServerCredentials | None:
    """TLS credentials of the learner, with client certificates required when tls_ca is set."""
    if not cfg.tls:
        return None
    if not cfg.tls_cert:
        raise ConfigError("tls_cert", "", "the learner needs a certificate and key when tls is on")
    pair = [(_read(cfg.tls_key, "tls_key"), _read(cfg.tls_cert, "tls_cert"))]
    if cfg.tls_ca:
        return grpc.ssl_server_credentials(
            pair, root_certificates=_read(cfg.tls_ca, "tls_ca"), require_client_auth=True
        )
    return grpc.ssl_server_credentials(pair)


def channel_credentials(cfg: TransportConfig) -> grpc.ChannelCredentials | None:
    """TLS credentials of the actor: the CA that signs the learner, and its own cert for mTLS."""
    if not cfg.tls:
        return None
    root = _read(cfg.tls_ca, "tls_ca") if cfg.tls_ca else None
    key = _read(cfg.tls_key, "tls_key") if cfg.tls_key else None
    cert = _read(cfg.tls_cert, "tls_cert") if cfg.tls_cert else None
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=cert
    )


def bearer(token: str) -> str:
    return f"Bearer {token}"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class ActorCredentials:
    """Who may speak for which actor id: the shared token, per-actor tokens, certificates.

    The token interceptor lets in any call that carries one of the known tokens; this
    check, run at the handshake and on every call of a session, then ties the token (and,
    with ``bind_certificates``, the client certificate) to the actor id it speaks for.
    """

    shared_token: str = ""
    actor_tokens: Mapping[str, str] = field(default_factory=dict)
    bind_certificates: bool = False

    @classmethod
    def from_config(cls, cfg: TransportConfig) -> ActorCredentials:
        return cls(cfg.read_token(), cfg.read_actor_tokens(), cfg.tls_bind_actor_id)

    @property
    def tokens(self) -> list[str]:
        """Every token that may open a call (the shared one and each actor's own)."""
        return [t for t in (self.shared_token, *self.actor_tokens.values()) if t]

    def refusal(
        self, actor_id: str, metadata: Mapping[str, Any], auth_context: Mapping[str, Any]
    ) -> str:
        """Why this call may not speak for ``actor_id``; empty when it may."""
        got = str(metadata.get(AUTH_HEADER, ""))
        got = got[len("Bearer ") :] if got.startswith("Bearer ") else got
        own = self.actor_tokens.get(actor_id)
        if own is not None:
            if not _same(got, own):
                return (
                    f"actor id {actor_id!r} has its own token (transport.actor_tokens_file on the "
                    "learner) and this call did not carry it: set that token on this actor"
                )
        elif self.shared_token:
            if not _same(got, self.shared_token):
                return (
                    f"actor id {actor_id!r} is not listed in the learner's transport.actor_tokens_file "
                    "and this call did not carry the shared token"
                )
        elif self.actor_tokens:
            return (
                f"actor id {actor_id!r} is not listed in the learner's transport.actor_tokens_file "
                "(and the learner has no shared token)"
            )
        if self.bind_certificates:
            names = {
                bytes(v).decode("utf-8", "replace")
                for key in ("x509_common_name", "x509_subject_alternative_name")
                for v in auth_context.get(key, ())
            }
            if actor_id not in names:
                shown = ", ".join(sorted(names)) or "none"
                return (
                    f"the client certificate does not name actor id {actor_id!r} (it names: {shown}); "
                    "transport.tls_bind_actor_id requires the actor id as its common name or a DNS name"
                )
        return ""


class TokenInterceptor(grpc.ServerInterceptor):
    """Rejects every call whose ``authorization`` metadata carries none of the known tokens.

    ``token`` is the shared token or a list of accepted tokens (shared + per actor; which
    actor id a token may speak for is checked later, by :class:`ActorCredentials`). A
    rejected call ends with UNAUTHENTICATED and a message that says which setting to fix;
    the learner logs the peer address and the actor id the caller claimed.
    """

    def __init__(self, token: str | Sequence[str], exempt: Sequence[str] = HEALTH_METHODS) -> None:
        tokens = [token] if isinstance(token, str) else list(token)
        if not tokens or not all(tokens):
            raise ValueError("TokenInterceptor needs non-empty tokens")
        self._expected = [bearer(t).encode() for t in tokens]
        self._exempt = frozenset(exempt)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method  # type: ignore[attr-defined]
        handler = continuation(handler_call_details)
        if handler is None or method in self._exempt:
            return handler
        metadata = dict(handler_call_details.invocation_metadata)  # type: ignore[attr-defined]
        got = str(metadata.get(AUTH_HEADER, "")).encode()
        # Compare with every token (no early exit), so timing does not tell which matched.
        if sum(hmac.compare_digest(got, e) for e in self._expected):
            return handler
        return _refusing_handler(
            handler, method, str(metadata.get(ACTOR_HEADER, "?")), missing=not got
        )


def _refusing_handler(
    handler: grpc.RpcMethodHandler, method: str, actor: str, missing: bool
) -> grpc.RpcMethodHandler:
    problem = "no token" if missing else "a wrong token"
    detail = (
        f"the learner requires a token and this call carried {problem}: "
        "set transport.token or transport.token_file on the actor to the learner's token"
    )

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        log.warning("refused %s from %s (actor %r): %s", method, context.peer(), actor, problem)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, detail)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)


# ------------------------------------------------------------- development certificates


@dataclass(frozen=True)
class DevCertificates:
    """Paths of a throwaway CA, a learner (server) certificate and an actor (client) one."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def generate_dev_certificates(
    out_dir: str | Path,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    days: int = 30,
    client_name: str = "hilrl actor",
) -> DevCertificates:
    """Write a self-signed CA and a server + client certificate signed by it (PEM).

    ``client_name`` is the client certificate's common name: the actor id, for a learner
    with ``transport.tls_bind_actor_id``.

    For tests and a first setup on a private network; production sites use their own CA.
    Needs the ``cryptography`` package (``pip install cryptography``).
    """
    try:  # optional: cryptography is only in the dev extra; only this helper needs it
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "generate_dev_certificates needs 'cryptography': pip install cryptography"
        ) from exc

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("hilrl dev CA"))
        .issuer_name(name("hilrl dev CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_key, server_cert = leaf("hilrl learner", ExtendedKeyUsageOID.SERVER_AUTH, sans)
    client_key, client_cert = leaf(client_name, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    paths = DevCertificates(
        ca_cert=out / "ca.pem",
        server_cert=out / "learner.pem",
        server_key=out / "learner.key",
        client_cert=out / "actor.pem",
        client_key=out / "actor.key",
    )
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    write_key(server_key, paths.server_key)
    write_key(client_key, paths.client_key)
    return paths
