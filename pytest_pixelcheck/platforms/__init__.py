"""Registry of ad platforms: each one knows its wire formats and its dedup rule.

A platform module answers four questions for the rest of the harness:
which requests are its browser collection hits (the proxy answers and decodes
them), which hosts are its server API (the proxy reroutes them to the sink),
how to decode and answer a server API request (the sink calls it), and which
key makes a browser event and a server event the same conversion.
"""

from __future__ import annotations

import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import CapturedRequest, Event, Source

# 1x1 transparent GIF, the answer image beacons expect
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@functools.cache
def stand_in_script(path: Path) -> bytes:
    """A stand-in tag library's bytes, read once per process: the proxy serves it to
    every new browser context, seven of them on a page with every platform on."""
    return path.read_bytes()


@dataclass
class CannedResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(repr=False)  # the generated repr would print the token
class ServerAnswer:
    """What the sink recorded and answers for one server API request."""

    events: list[Event]
    status: int
    body: dict[str, Any]
    #: where the access token came from ("query", "form", "json", "header") or None
    token_location: str | None = None
    token: str | None = None
    #: schema violations that made the platform reject the request
    violations: list[Any] = field(default_factory=list)

    def __repr__(self) -> str:
        token = f"token in {self.token_location}" if self.token_location else "no token"
        return (f"ServerAnswer(status={self.status} {len(self.events)} events, {token}, "
                f"{len(self.violations)} violations)")


def answer_json(event: Event | None) -> dict[str, Any] | None:
    """The answer the sink gave to this event's call, as a JSON object; None when
    there is none or it is not one."""
    if event is None or event.raw is None or not event.raw.response_body:
        return None
    try:
        body = json.loads(event.raw.response_body)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class Platform(ABC):
    """Everything one ad platform knows. Subclass it in ``platforms/<name>/`` and
    ``register()`` an instance; the core asks it, never the other way round.

    Required: the browser decoder, the server API handler and its error answers, the
    dedup key and rule. The rest has neutral defaults a platform overrides.
    """

    #: as users write it in ``platform=`` and options: "meta", "tiktok", "ga4"
    name: str = ""
    #: as the platform writes it: "Meta", "TikTok", "Google Analytics 4"
    title: str = ""
    #: the browser tag and the server API in the platform's own words
    tag_name: str = "the pixel"
    api_name: str = "the server API"
    #: hosts of the platform's server API, which the proxy hands to the sink
    server_hosts: frozenset[str] = frozenset()
    #: fault kinds ``error_answer`` knows (pixelcheck_sink.fail_next(kind=))
    fault_kinds: tuple[str, ...] = ("500", "429", "transient", "expired_token", "timeout")
    #: request header names (lower case) and query/form/JSON keys that carry secrets
    secret_headers: frozenset[str] = frozenset({"authorization"})
    secret_params: frozenset[str] = frozenset({"access_token"})
    #: server events older than this many seconds are refused (None: no known limit)
    max_event_age: float | None = None
    #: server events further ahead than this many seconds are suspicious
    future_tolerance: float = 300.0
    #: folder of recorded samples (``samples/*.json``) for the conformance suite
    samples_dir: Path | None = None
    #: the samples (names in ``samples_dir``) that stand for one sale in analyze's synthetic
    #: captures (analysis/synthetic.py): "browser" and "server"; optional
    #: "server_same_shop" (text of the server sample replaced so both are one shop's),
    #: "server_plain_id" (the id the server sample carries when the decoder reports
    #: another form of it), "browser_hashes_ids" (the tag sends the SHA-256 of the id),
    #: "browser_batch_key" (the browser body's list of events: only the last is kept)
    synthetic_sale: dict[str, Any] = {}
    #: the unit the server API wants event times in, as its documentation words it
    event_time_unit: str = "Unix seconds"
    #: the platform's standard event names, to suggest the right spelling
    standard_events: tuple[str, ...] = ()
    #: other names users may write for the platform ("google" for GA4)
    aliases: tuple[str, ...] = ()

    #: the request shapes ``analyze`` decodes in SQL (analysis.fastpath.SqlShape), each
    #: giving exactly the rows ``decode_browser`` / ``handle_server`` give for the lines
    #: it takes; the rest go through those decoders
    sql_shapes: tuple[Any, ...] = ()
    #: text in a capture line whose request decodes differently after the requests
    #: decoded before it (a hit the decoder pairs with an earlier one): ``analyze``
    #: decodes the lines carrying it in file order, in one process
    ordered_markers: tuple[str, ...] = ()

    # --- browser side -----------------------------------------------------------------

    @abstractmethod
    def is_collection(self, host: str, path: str) -> bool:
        """Is a request to ``host``/``path`` one of the tag's collection hits?"""

    @abstractmethod
    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        """The events of one collection hit (an undecodable one: ``error`` set)."""

    def forget_decoded(self) -> None:  # noqa: B027 (a hook: most decoders keep nothing)
        """Drop what decoding earlier requests left behind (``ordered_markers``), before
        a new pass over a capture."""

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        return CannedResponse(200, TRANSPARENT_GIF, "image/gif")

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        """An offline stand-in for the platform's JS library, or None."""
        return None

    # --- server side ------------------------------------------------------------------

    @abstractmethod
    def is_server_api(self, host: str | None, path: str) -> bool:
        """Is ``path`` on ``host`` (None: the sink's own URL) the server API?"""

    @abstractmethod
    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        """Decode a server API call and answer it as the platform would."""

    @abstractmethod
    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        """The platform's own answer for an injected fault or a bad token: ``kind`` is
        one of ``fault_kinds``, "invalid_token" or "missing_token"."""

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        """The platform's own answer to a body it cannot read (its 400, or what it sends
        instead): the sink's answer when decoding a call failed in a way the decoder did
        not foresee. Default: a 400 with the reason."""
        return 400, {"error": {"message": f"Invalid request body: {reason}", "code": 400}}

    def is_transient(self, event: Event) -> bool:
        """Should a client retry after this answer? Default: 5xx and 429."""
        status = event.raw.response_status if event.raw is not None else None
        return status is not None and (status >= 500 or status == 429)

    def answer_text(self, event: Event) -> str:
        """The platform's error answer to this event's call, in a few words."""
        if event.raw is None or not event.raw.response_body:
            return "(no answer body)"
        return event.raw.response_body.decode("utf-8", "replace")[:200]

    def test_event_code(self, event: Event) -> str | None:
        """The test-mode marker this server event carries (Meta's test_event_code)."""
        value = event.extra.get("test_event_code")
        return str(value) if value else None

    # --- dedup ------------------------------------------------------------------------

    @abstractmethod
    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        """Events with equal keys are one conversion. None: cannot be deduplicated."""

    @abstractmethod
    def dedup_rule(self) -> str:
        """One line for failure messages: what must be equal on both sides."""

    def deduplicates(self, event_name: str | None) -> bool:
        """Does the platform merge browser and server copies of this event at all?
        (GA4 merges only purchases.)"""
        return True

    def journey_identity(self, event: Event) -> dict[str, str | None]:
        """The click id and cookies this event carries that a journey must keep, by the
        names users know them by (``"_fbp"``, ``"_fbc (fbclid)"``); {}: none known."""
        return {}

    #: the platform's flag for data of a visitor who did not consent, in its own words
    #: (Meta's data_processing_options LDU); empty: the platform has none
    limited_use_flag: str = ""

    def limited_use(self, event: Event) -> bool:
        """Does this server event carry the platform's limited-use / no-consent flag?"""
        return False

    def name_variant(self, browser_name: str | None, server_name: str | None) -> str | None:
        """When two names differ only by the platform's own mapping between the tag's
        and the API's spelling, a sentence saying so; else None."""
        return None

    def fix(self, code: str, event: Event | None = None) -> str | None:
        """The fix for a finding ``code`` in the platform's own words (its tag's call,
        its API's field), or None to keep the core's neutral text."""
        return None

    # --- customer data ----------------------------------------------------------------

    #: ``event.user_data`` field -> common key, read by the default ``customer_values``
    customer_fields: dict[str, str] = {}
    #: the platform's digest of a customer's raw value (its pii_rules' ``hash_value``,
    #: as a staticmethod), behind the default ``expected_value``; None: no rule
    digest_rule: Callable[[str, str], str] | None = None

    def customer_values(self, event: Event) -> dict[str, list[Any]]:
        """Customer match keys in this event, under the common names (em, ph, fn, ln,
        ct, st, zp, country, db, ge, external_id), each with the values sent. Default:
        the ``user_data`` fields ``customer_fields`` names, one value or a list each."""
        out: dict[str, list[Any]] = {}
        for name, value in event.user_data.items():
            key = self.customer_fields.get(name)
            if key is None:
                continue
            kept = [v for v in (value if isinstance(value, list) else [value])
                    if v not in (None, "")]
            if kept:
                out.setdefault(key, []).extend(kept)
        return out

    #: customer keys (common names) the platform wants hashed; the others travel plain
    hashed_keys: frozenset[str] = frozenset()

    def expected_value(self, key: str, raw: str) -> str | None:
        """What the platform expects on the wire for a customer's ``raw`` value of
        ``key``: the hex SHA-256 of its normalization for hashed keys. None: no rule."""
        if self.digest_rule is None or key not in self.hashed_keys:
            return None
        return self.digest_rule(key, raw) or None

    def normalize_customer(self, key: str, raw: str, country: str | None) -> str | None:
        """A customer's value of ``key`` (a common name), as typed, normalized the way
        the platform wants it before hashing (or, for keys it wants plain, as sent).
        ``country``: the customer's country as declared, for rules that need one (a
        national phone number, a ZIP code). None: no rule for this key. Raises
        ``ValueError`` for a value that cannot be normalized. The core's ``normalize``,
        ``hash_value`` and ``Customer`` read it."""
        return None

    def customer_forms(self, key: str, raw: str, country: str | None) -> list[str]:
        """Every normalized form of ``raw`` the platform takes as right, its own first
        (where its documentation and its SDK differ, both)."""
        form = self.normalize_customer(key, raw, country)
        return [form] if form else []

    def normalization_mistakes(self, key: str, raw: str,
                               country: str | None) -> list[tuple[str, str]]:
        """(wrongly normalized value, the step it skipped) for each plausible mistake,
        smallest first: a hash of one is reported as that mistake
        (``Customer.verdict``). Default: none known."""
        return []

    #: identifier columns of the match-key coverage, after the customer keys: key ->
    #: short label, e.g. {"client_ip_address": "ip"}
    coverage_columns: dict[str, str] = {}

    def check_customer_data(self, result: Any, customer: Any) -> list[Any] | None:
        """The platform's own PII checks over one test's ``MatchResult``, or None for
        the core's checks driven by ``customer_values``/``hashed_keys``."""
        return None

    def match_key_coverage(self, result: Any, customer: Any) -> list[Any]:
        """Match-key coverage of this platform's events in one test's ``MatchResult``:
        one ``pii.EventCoverage`` per event, a state per key (customer keys and
        ``coverage_columns``). Default: the customer keys from ``customer_values``,
        judged by ``hashed_keys`` and ``expected_value``."""
        from ..pii import customer_values_coverage

        return customer_values_coverage(self, result, customer)

    def identity_findings(self, pair: Any) -> list[Any]:
        """Findings on the platform's cookie and click ids of a merged pair."""
        return []

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A request rebuilt from one line of a backend's log (the body it sent, as
        JSON), or None when the line is not this platform's."""
        return None

    def findings(self, result: Any) -> list[Any]:
        """Findings only this platform knows to look for, over one test's
        ``MatchResult`` (its own events only)."""
        return []


class UnknownPlatform(Platform):
    """Stands for events of a platform nobody registered (an old capture, a typo):
    neutral words, nothing decoded, nothing merged."""

    name = "unknown"
    title = "the platform"

    def is_collection(self, host: str, path: str) -> bool:
        return False

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        return []

    def is_server_api(self, host: str | None, path: str) -> bool:
        return False

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        raise NotImplementedError("no platform is registered for this request")

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        return 500, {"error": {"message": f"pixelcheck: no platform answers {kind!r}"}}

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        return None

    def dedup_rule(self) -> str:
        return ""


UNKNOWN = UnknownPlatform()


_REGISTRY: dict[str, Platform] = {}


def register(platform: Platform) -> Platform:
    _REGISTRY[platform.name] = platform
    return platform


def _register_finding_codes() -> None:
    """Each platform's own finding codes, in the catalogue from the start (a severity
    override may name one before any of its findings exists): a platform lists them
    as ``finding_codes``, or registers them when its ``findings`` module is imported."""
    import importlib

    from ..findings import register_codes

    for platform in _REGISTRY.values():
        codes = getattr(platform, "finding_codes", None)
        if codes:
            register_codes(codes)
            continue
        package = type(platform).__module__.rpartition(".")[0]
        try:
            importlib.import_module(f"{package}.findings")
        except ModuleNotFoundError:
            pass


def get(name: str) -> Platform:
    """The platform registered as ``name`` or with ``name`` among its aliases."""
    try:
        return _REGISTRY[name]
    except KeyError:
        aliased = next((p for p in _REGISTRY.values() if name in p.aliases), None)
        if aliased is not None:
            return aliased
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown platform {name!r}; registered: {known}") from None


def default() -> Platform | None:
    """The platform a call means when it names none: the first registered (the
    built-ins load Meta first)."""
    return next(iter(_REGISTRY.values()), None)


def all_platforms() -> list[Platform]:
    return list(_REGISTRY.values())


def for_collection(host: str, path: str) -> Platform | None:
    for platform in _REGISTRY.values():
        if platform.is_collection(host, path):
            return platform
    return None


def for_server_api(host: str | None, path: str) -> Platform | None:
    for platform in _REGISTRY.values():
        if platform.is_server_api(host, path):
            return platform
    return None


def for_library(host: str, path: str) -> tuple[Platform, CannedResponse] | None:
    for platform in _REGISTRY.values():
        response = platform.library_response(host, path)
        if response is not None:
            return platform, response
    return None


def is_server_host(host: str) -> bool:
    return any(host in p.server_hosts for p in _REGISTRY.values())


def sql_shapes() -> list[Any]:
    """Every registered platform's SQL shapes, for ``analyze``."""
    return [shape for platform in all_platforms() for shape in platform.sql_shapes]


def ordered_markers() -> tuple[str, ...]:
    """Every registered platform's ``ordered_markers``."""
    return tuple(m for platform in all_platforms() for m in platform.ordered_markers)


def forget_decoded() -> None:
    """Every platform forgets what earlier decoding left behind."""
    for platform in all_platforms():
        platform.forget_decoded()


def decode_request(request: CapturedRequest, source: str | None = None) -> list[Event]:
    """Events in a recorded request (a capture line, a HAR entry, a backend log line).

    Requests that are neither a collection hit nor a server API call give [].
    The recorded answer status, when there is one, wins over a fresh decode's.
    """
    from ..wire import host_of, path_of

    host, path = host_of(request.url), path_of(request.url)
    platform = for_collection(host, path) if source != "server" else None
    side: Source = "browser"
    if platform is None and source != "browser":
        platform, side = for_server_api(request.original_host or host, path), "server"
    if platform is None:
        return []
    recorded_status = request.response_status
    try:
        if side == "browser":
            return platform.decode_browser(request)
        answer = platform.handle_server(request)
    except Exception as exc:  # noqa: BLE001  (a decoder bug loses no line of a log)
        reason = f"pixelcheck could not read it ({type(exc).__name__}: {exc})"[:300]
        return [Event(platform.name, side, None, None, None, None, request.arrival_time,
                      raw=request, error=reason)]
    request.response_status = recorded_status or answer.status
    return answer.events


#: the entry-point group third-party platforms register under: a module (or any
#: object) whose import registers its Platform, e.g. in a package's pyproject.toml
#: ``[project.entry-points."pytest_pixelcheck.platforms"] acme = "acme_pixel.platform"``
ENTRY_POINT_GROUP = "pytest_pixelcheck.platforms"


def _load() -> None:
    """Import every built-in platform folder (each registers itself), then the
    platforms other packages declare under ``ENTRY_POINT_GROUP``."""
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name != "meta",
                                                                         m.name)):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        if isinstance(loaded, Platform) and loaded.name not in _REGISTRY:
            register(loaded)
        elif isinstance(loaded, type) and issubclass(loaded, Platform) and \
                loaded.name not in _REGISTRY:
            register(loaded())
    _register_finding_codes()


_load()
