"""The proxy's CA in the forms a backend needs, and the environment that points at them.

A backend in a container or on a staging host starts before the test run, so it
must trust a CA that exists before the proxy does: ``pixelcheck ca --export DIR``
creates (or reuses) the CA in a CA folder, the proxy signs with it
(``--pixelcheck-ca-dir``), and DIR receives only public certificates to mount.
"""

from __future__ import annotations

import json
from pathlib import Path

CA_BASENAME = "mitmproxy"  # mitmproxy's file names in its confdir
CA_CERT_FILE = "pixelcheck-ca.pem"
CA_BUNDLE_FILE = "ca-bundle.pem"
BROWSER_SERVER_FILE = "browser-server.json"
DEFAULT_CA_DIR = ".pixelcheck-ca"
LOCAL_NO_PROXY = ("127.0.0.1", "localhost", "::1")


def ensure_ca(ca_dir: str | Path) -> Path:
    """The CA certificate (PEM) of ``ca_dir``, created with its key when missing."""
    from mitmproxy.certs import CertStore

    folder = Path(ca_dir)
    folder.mkdir(parents=True, exist_ok=True)
    CertStore.from_store(folder, CA_BASENAME, 2048)
    return folder / f"{CA_BASENAME}-ca-cert.pem"


def public_roots() -> str | None:
    """certifi's roots (installed with requests), so a bundle replacing the system's
    still reaches real hosts the backend talks to directly."""
    try:
        import certifi

        return Path(certifi.where()).read_text()
    except (ImportError, OSError):
        return None


def write_bundle(ca_cert: Path, bundle: Path) -> Path:
    parts = [ca_cert.read_text()]
    roots = public_roots()
    if roots:
        parts.append(roots)
    bundle.write_text("\n".join(parts))
    return bundle


def export_ca(ca_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the CA certificate, the CA + public roots bundle and a browser server's
    launch options trusting the CA to ``out_dir`` (never the key); returns (certificate,
    bundle)."""
    cert = ensure_ca(ca_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exported = out / CA_CERT_FILE
    exported.write_text(cert.read_text())
    (out / BROWSER_SERVER_FILE).write_text(
        json.dumps(browser_server_config(exported), indent=1) + "\n")
    return exported, write_bundle(exported, out / CA_BUNDLE_FILE)


def spki_sha256(ca_cert: Path) -> str:
    """The CA key's SPKI hash, as Chromium's --ignore-certificate-errors-spki-list takes it
    (mitmproxy's leaf certificates reuse the CA's key)."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def browser_server_config(ca_cert: Path) -> dict[str, object]:
    """Launch options for ``playwright launch-server --config``: a browser server (a grid's
    Chromium) that trusts this CA in every connection, preconnects included, as a locally
    launched one does; only a context's ``ignore_https_errors`` misses some of them."""
    from .browser import chromium_args

    return {"headless": True, "args": chromium_args(spki_sha256(ca_cert))}


def backend_env(proxy_url: str, sink_url: str, ca_bundle: str, ca_cert: str,
                no_proxy: tuple[str, ...] = LOCAL_NO_PROXY) -> dict[str, str]:
    """Environment for a backend whose HTTPS calls go through the proxy.

    ``requests`` lets REQUESTS_CA_BUNDLE win over ``Session.verify``, and many machines
    export it, so every CA variable points at the bundle; Node adds NODE_EXTRA_CA_CERTS
    to its own roots, so it takes the CA alone.
    """
    bypass = ",".join(dict.fromkeys(no_proxy))
    return {
        "HTTPS_PROXY": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": bypass,
        "no_proxy": bypass,
        "SSL_CERT_FILE": ca_bundle,
        "REQUESTS_CA_BUNDLE": ca_bundle,
        "CURL_CA_BUNDLE": ca_bundle,
        "NODE_EXTRA_CA_CERTS": ca_cert,
        # for a backend pointed at the sink directly instead (its API base URL)
        "PIXELCHECK_SINK_URL": sink_url,
    }
