"""Synthetic production captures for trying and benchmarking ``analyze`` at scale.

Each platform's recorded samples (its folder's ``samples/``) are the templates: one
browser hit and one server call per sale, with the event id, event time and arrival
time put in by text substitution, so millions of lines cost little to write and decode
exactly as the recorded requests do. Fault rates are parameters; the seed fixes the run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .. import platforms
from ..artifacts import CAPTURE_FORMAT
from ..events import CapturedRequest


def _sales() -> dict[str, dict[str, Any]]:
    """Each platform's ``synthetic_sale``: the samples that stand for one of its sales."""
    return {p.name: p.synthetic_sale for p in platforms.all_platforms() if p.synthetic_sale}


#: platform -> (browser sample, server sample)
TEMPLATES: dict[str, tuple[str, str]] = {
    name: (sale["browser"], sale["server"]) for name, sale in _sales().items()}
#: the samples' order ids, made one per sale (so no two sales carry the same payload)
_ORDER_IDS = re.compile(r"(?<![\w-])(ORD-1001|ORD-1|T-77)(?![\w-])")
_ORDER = "@@ORDER@@"
_ID, _TIME, _ARRIVAL = "@@ID@@", "@@TIME@@", "@@ARRIVAL@@"
START = datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()


@dataclass
class Faults:
    """Shares of sales (0..1) with each fault."""

    #: the backend's id carries a '-server' suffix: a near miss
    id_suffix: float = 0.05
    #: the backend never sends the sale
    missing_server: float = 0.02
    #: the server copy arrives ten seconds after the browser's
    late_server: float = 0.0
    #: the server call's body is cut in half: undecodable
    truncated_server: float = 0.0
    #: on the last day, id_suffix becomes this (a deploy that breaks dedup)
    last_day_id_suffix: float | None = None


@dataclass
class Template:
    platform: str
    source: str
    text: str
    time_format: str
    #: the tag sends the SHA-256 of the id (a 64-hex id it sends as it is)
    hashed_ids: bool = False

    def sent_id(self, event_id: str) -> str:
        return hashlib.sha256(event_id.encode()).hexdigest() if self.hashed_ids else event_id

    def line(self, event_id: str, event_time: float, arrival: float) -> str:
        return (self.text.replace(_ID, self.sent_id(event_id))
                .replace(_ORDER, "o" + event_id.removesuffix("-server"))
                .replace(_TIME, _format(event_time, self.time_format))
                .replace(f'"{_ARRIVAL}"', repr(arrival)))


def _format(t: float, kind: str) -> str:
    if kind == "ms":
        return str(int(t * 1000))
    if kind == "iso":
        stamp = datetime.fromtimestamp(t, timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    return str(int(t))


def _time_format(raw: Any) -> str:
    text = str(raw)
    if text.isdigit():
        return "ms" if len(text) >= 13 else "s"
    return "iso"


def _sample(platform: str, name: str) -> dict[str, Any]:
    folder = Path(platforms.__file__).parent / platform / "samples"
    return json.loads((folder / name).read_text())


def load_template(platform: str, source: str) -> Template:
    """The sample as a capture line with placeholders, checked to decode back."""
    sale = _sales()[platform]
    sample = _sample(platform, sale[source])
    request = dict(sample["request"])
    events = platforms.decode_request(CapturedRequest.from_dict(request), source)
    batch = sale.get("browser_batch_key")
    if batch and source == "browser":  # keep the sale, not the page view before it
        body = json.loads(request["body"])
        body[batch] = body[batch][-1:]
        request["body"] = json.dumps(body, separators=(",", ":"))
        events = events[-1:]
    event = events[-1]
    assert event.event_id, f"{platform} {source} sample has no event id"
    raw_time = event.event_time_raw
    request["arrival_time"] = _ARRIVAL
    text = json.dumps({"format": CAPTURE_FORMAT, "source": source, "platform": platform,
                       "test_id": None, "request": request})
    # a server call may carry the plain id of one the decoder reports hashed
    raw_id = event.event_id if event.event_id in text else sale["server_plain_id"]
    for form in dict.fromkeys((raw_id, quote(raw_id, safe=""))):
        text = text.replace(form, _ID)
    same_shop = sale.get("server_same_shop", {}) if source == "server" else {}
    for theirs, ours in same_shop.items():
        text = text.replace(theirs, ours)
    text = _ORDER_IDS.sub(_ORDER, text)
    kind = "s"
    if raw_time is not None:
        kind = _time_format(raw_time)
        text = text.replace(str(raw_time), _TIME)
    template = Template(platform, source, text, kind,
                        hashed_ids=bool(sale.get("browser_hashes_ids"))
                        and raw_id == event.event_id)
    _check(template)
    return template


def _check(template: Template) -> None:
    at = START + 3600
    record = json.loads(template.line("check.1", at, at + 0.5))
    request = CapturedRequest.from_dict(record["request"])
    events = platforms.decode_request(request, template.source)
    expected = "check.1"
    if _sales()[template.platform].get("browser_hashes_ids"):
        expected = hashlib.sha256(b"check.1").hexdigest()
    assert events and events[-1].event_id == expected and events[-1].decoded, (
        f"the {template.platform} {template.source} template does not decode back: "
        f"{events and events[-1]!r}")


@dataclass
class Plan:
    sales: int
    platforms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TEMPLATES, 1.0))
    faults: Faults = field(default_factory=Faults)
    days: int = 7
    seed: int = 13


def lines(plan: Plan) -> Iterator[str]:
    """Capture lines of ``plan.sales`` sales, in arrival order within each day."""
    rng = random.Random(plan.seed)
    names = list(plan.platforms)
    weights = [plan.platforms[n] for n in names]
    templates = {n: (load_template(n, "browser"), load_template(n, "server")) for n in names}
    per_day = max(plan.sales // plan.days, 1)
    faults = plan.faults
    for sale in range(plan.sales):
        day = min(sale // per_day, plan.days - 1)
        at = START + day * 86400 + (sale % per_day) * (86000 / per_day)
        platform = rng.choices(names, weights)[0]
        browser, server = templates[platform]
        event_id = f"ord-{sale:08d}"
        yield browser.line(event_id, at, at + 0.05)
        roll = rng.random()
        suffix = faults.id_suffix
        if faults.last_day_id_suffix is not None and day == plan.days - 1:
            suffix = faults.last_day_id_suffix
        if roll < faults.missing_server:
            continue
        roll -= faults.missing_server
        server_id, delay = event_id, 0.3
        if roll < suffix:
            server_id = event_id + "-server"
        elif roll < suffix + faults.late_server:
            delay = 10.0
        line = server.line(server_id, at, at + delay)
        if rng.random() < faults.truncated_server:
            record = json.loads(line)
            record["request"]["body"] = record["request"]["body"][: len(
                record["request"]["body"]) // 2]
            line = json.dumps(record)
        yield line


def write(path: str | Path, plan: Plan) -> int:
    """Writes the capture (gzipped if the name ends in .gz); returns the line count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out: IO[str] = (gzip.open(path, "wt", encoding="utf-8", compresslevel=1)
                    if path.suffix == ".gz" else open(path, "w", encoding="utf-8"))
    count = 0
    with out:
        buffer: list[str] = []
        for line in lines(plan):
            buffer.append(line)
            if len(buffer) >= 10_000:
                out.write("\n".join(buffer) + "\n")
                count += len(buffer)
                buffer = []
        if buffer:
            out.write("\n".join(buffer) + "\n")
            count += len(buffer)
    return count
