"""Why an actor cannot connect, when retrying cannot help: TLS settings that differ.

gRPC reports a TLS mismatch as a generic UNAVAILABLE ("Socket closed", "Tls handshake
failed"), which an actor would otherwise retry for minutes. :func:`tls_mismatch` reads the
error and, where it is ambiguous, asks the learner's port directly with a plain TLS
handshake: a definite mismatch is named at once, with the setting to change.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

from hilrl.config.transport import TransportConfig

_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def tls_mismatch(cfg: TransportConfig, detail: str, timeout_s: float = 2.0) -> str:
    """What to fix when the failed connection (gRPC error ``detail``) is a TLS mismatch; "" if not."""
    low = detail.lower()
    if "connection refused" in low or "deadline" in low or "timed out" in low:
        return ""  # nobody listens, or the link stalls: retrying can help
    where = f"the learner at {cfg.address}"
    if cfg.tls:
        if "wrong_version_number" in low:
            return (
                f"{where} does not speak TLS: set transport.tls: false on this actor, or turn TLS "
                "on at the learner (tls: true with tls_cert/tls_key)"
            )
        if any(
            h in low for h in ("certificate_verify_failed", "bad_signature", "signature failure")
        ):
            ca = cfg.tls_ca or "not set"
            return (
                f"{where} presents a certificate this actor cannot verify with transport.tls_ca "
                f"({ca}): set tls_ca to the CA that signed the learner's certificate"
            )
        if "hostname" in low or "subject alternative" in low:
            return (
                f"{where} presents a certificate for another host name: set "
                "transport.tls_server_name to a name in the learner's certificate"
            )
        if "socket closed" in low or "reset" in low:
            return _client_certificate_problem(cfg, timeout_s)
        return ""
    if ("socket closed" in low or "reset" in low) and _speaks_tls(cfg, timeout_s):
        return (
            f"{where} uses TLS and this actor does not: set transport.tls: true and "
            "transport.tls_ca (plus tls_cert/tls_key when the learner requires client "
            "certificates)"
        )
    return ""


def _context(cfg: TransportConfig | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a probe: we only ask what the server speaks
    ctx.set_alpn_protocols(["h2"])
    if cfg is not None and cfg.tls_cert and cfg.tls_key:
        ctx.load_cert_chain(
            str(Path(cfg.tls_cert).expanduser()), str(Path(cfg.tls_key).expanduser())
        )
    return ctx


def _handshake(cfg: TransportConfig, ctx: ssl.SSLContext, timeout_s: float) -> str:
    """ "" when a TLS session with the learner works end to end, else the SSL error text."""
    host = cfg.host.strip("[]")
    try:
        with (
            socket.create_connection((host, cfg.port), timeout=timeout_s) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(_H2_PREFACE)
            # TLS 1.3 refuses a client certificate only after the handshake: the
            # learner then closes the connection instead of sending its settings.
            if not tls.recv(1):
                return "closed by the learner after the TLS handshake"
    except ssl.SSLError as exc:
        return str(exc) or type(exc).__name__
    except OSError as exc:
        return f"network: {exc}"
    return ""


def _speaks_tls(cfg: TransportConfig, timeout_s: float) -> bool:
    """True only on proof: a completed TLS handshake, or a TLS alert from the peer.

    A connection closed without a word (an EOF: a proxy or tunnel whose learner is down,
    a learner restarting) proves nothing, and a wrong guess here would stop an actor
    for good: it is asked twice, a moment apart, and both answers must be proof.
    """
    for attempt in range(2):
        error = _handshake(cfg, _context(None), timeout_s).lower()
        proof = error in ("", "closed by the learner after the tls handshake") or (
            "alert" in error and "eof" not in error
        )
        if not proof:
            return False
        if attempt == 0:
            time.sleep(0.2)
    return True


def _client_certificate_problem(cfg: TransportConfig, timeout_s: float) -> str:
    try:
        ctx = _context(cfg)
    except (OSError, ssl.SSLError) as exc:
        return f"cannot load transport.tls_cert / tls_key: {exc}"
    error = _handshake(cfg, ctx, timeout_s).lower()
    if not error or error.startswith("network"):
        return ""
    if not cfg.tls_cert:
        return (
            f"the learner at {cfg.address} requires a client certificate (mutual TLS): set "
            "transport.tls_cert and transport.tls_key on this actor"
        )
    if "closed by the learner" in error or "certificate" in error or "unknown" in error:
        return (
            f"the learner at {cfg.address} refused this actor's client certificate "
            f"({cfg.tls_cert}): it must be signed by the CA the learner trusts (its tls_ca)"
        )
    return ""
