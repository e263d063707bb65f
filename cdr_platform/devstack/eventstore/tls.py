"""A self-signed certificate for the dev server's optional TLS, made with the openssl CLI.

The ``cryptography`` package is not in the project's environment, so the certificate comes from
``openssl req -x509``; it is valid for ``localhost`` and ``127.0.0.1`` and serves as its own CA.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class TlsSetupError(RuntimeError):
    """The certificate could not be created (openssl missing or failing)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the PEM certificate (also the CA clients must trust) and its private key."""

    cert: Path
    key: Path


def ensure_self_signed(tls_dir: Path, host: str) -> TlsFiles:
    """Reuse ``server.crt``/``server.key`` in tls_dir, or create them (valid ten years)."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(tls_dir / "server.crt", tls_dir / "server.key")
    if files.cert.exists() and files.key.exists():
        return files
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsSetupError("TLS needs the openssl CLI on PATH (or run the dev server without --tls-dir)")
    names = {"localhost", "127.0.0.1", host}
    alt_names = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in sorted(names))
    command = [
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
        "-keyout", str(files.key), "-out", str(files.cert),
        "-subj", "/CN=localhost", "-addext", f"subjectAltName={alt_names}",
        "-addext", "basicConstraints=critical,CA:TRUE",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TlsSetupError(f"openssl could not create a certificate in {tls_dir}: {result.stderr.strip()}")
    return files
