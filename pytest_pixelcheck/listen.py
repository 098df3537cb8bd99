"""Where the proxy and sink listen, and the checks that keep that safe.

By default both listen on 127.0.0.1 on free ports. A backend in a container or on
a staging host needs them on an address it can reach and on ports fixed beforehand;
that is allowed only when asked for (``allow_remote``), and then the sink insists on
the expected access token, so an open port is not an open relay for whoever finds it.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

WILDCARDS = ("0.0.0.0", "::", "")


class ListenError(RuntimeError):
    """A listen setting that cannot work or is unsafe; the message says what to change."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, ``localhost`` and its subdomains: the machine itself. Any other
    host name may resolve anywhere, so it is not."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_host(host: str) -> str:
    """The address this machine's own clients (the browser, the proxy) use to reach a
    server listening on ``host``: a wildcard is reached on loopback."""
    return "127.0.0.1" if host in WILDCARDS else host


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_listen_host(host: str, *, allow_remote: bool, access_token: str | None) -> None:
    if is_loopback(host):
        return
    if not allow_remote:
        raise ListenError(
            f"--pixelcheck-listen-host={host} would open the proxy and sink to other "
            "machines. Add --pixelcheck-allow-remote (ini pixelcheck_allow_remote = true) "
            "if that is what you want, together with --pixelcheck-access-token, or keep "
            "the default 127.0.0.1.")
    if not access_token:
        raise ListenError(
            f"--pixelcheck-listen-host={host} with --pixelcheck-allow-remote needs "
            "--pixelcheck-access-token (the token your backend sends): a sink reachable "
            "from other machines answers only calls that carry it.")


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    """Raise ListenError naming ``port`` when another program holds it (fixed ports only)."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        # as the servers themselves bind: a port in TIME_WAIT is free to them
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise port_error(host, port, what, flag, exc) from None
    finally:
        probe.close()


def port_error(host: str, port: int, what: str, flag: str, exc: BaseException) -> ListenError:
    taken = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
    reason = "is taken by another program" if taken or not isinstance(exc, OSError) \
        else f"cannot be opened ({exc.strerror or exc})"
    return ListenError(
        f"the {what}'s port {port} on {host} {reason} (a pixelcheck serve or an earlier run "
        f"still running?). Stop that program, or choose another port with {flag} "
        "(0 picks a free one).")
