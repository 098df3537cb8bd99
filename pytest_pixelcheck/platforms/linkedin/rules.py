"""LinkedIn's conversion rules: the names pixelcheck gives LinkedIn's events.

Nothing LinkedIn sends names a conversion. The Insight Tag sends a conversion rule
id (``conversionId=7100004``), the Conversions API a rule URN
(``urn:lla:llaPartnerConversion:8200004``), and LinkedIn wants a **separate rule for
each source**, so the two copies of one purchase carry two different ids. What makes
them one conversion is the ``eventId`` within one ad account.

A test (or a conftest) therefore tells pixelcheck which rules it uses::

    from pytest_pixelcheck.platforms.linkedin import LINKEDIN, ConversionRule

    with LINKEDIN.rules.declared([ConversionRule("7100004", "PURCHASE", "tag"),
                                  ConversionRule("8200004", "PURCHASE", "api")],
                                 partner_id="5550001"):
        ...

or, for a whole run (the CLI, xdist workers), in the environment::

    PIXELCHECK_LINKEDIN_RULES="7100004=PURCHASE:tag,8200004=PURCHASE:api"
    PIXELCHECK_LINKEDIN_PARTNER=5550001

A declared rule gives both copies its name (so ``wait_for("PURCHASE",
platform="linkedin")`` works) and the ad account of the API copy (so a rule of
another account is caught). An undeclared rule's events are called ``"conversion
<rule id>"``: they still pair on ``eventId``, but as the two copies carry two rules
the core sees two names, and a near-miss id reads as a name mismatch whose fix says
to declare the rules. (One shared name for every undeclared rule was tried: the
core then took the copies of different conversions of equal value for retries.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Source = Literal["tag", "api"]

#: the name of a conversion whose rule nobody declared: "conversion <rule id>"
UNDECLARED = "conversion"
RULES_ENV = "PIXELCHECK_LINKEDIN_RULES"
PARTNER_ENV = "PIXELCHECK_LINKEDIN_PARTNER"
URN_PREFIX = "urn:lla:llaPartnerConversion:"


@dataclass(frozen=True)
class ConversionRule:
    """One conversion rule of Campaign Manager, as a test declares it."""

    rule_id: str
    #: the name pixelcheck gives its events: the rule's type ("PURCHASE") or any label
    name: str
    #: which source the rule was created for: the Insight Tag or the Conversions API
    source: Source | None = None
    #: the Insight Tag partner id of the rule's ad account (None: the default one)
    partner_id: str | None = None


def rule_id_of(value: object) -> str | None:
    """``urn:lla:llaPartnerConversion:123`` or ``123`` -> ``"123"``; else None."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if text.startswith(URN_PREFIX):
        text = text[len(URN_PREFIX):]
    return text if text.isdigit() else None


@lru_cache(maxsize=8)
def _from_env(text: str) -> tuple[ConversionRule, ...]:
    """``"7100004=PURCHASE:tag,8200004=PURCHASE:api"`` -> rules (bad items skipped)."""
    rules = []
    for item in text.split(","):
        rule_id, sep, rest = item.strip().partition("=")
        name, _, source = rest.partition(":")
        if sep and rule_id_of(rule_id) and name.strip():
            clean = source.strip().lower()
            rules.append(ConversionRule(rule_id.strip(), name.strip(),
                                        clean if clean in ("tag", "api") else None))  # type: ignore[arg-type]
    return tuple(rules)


class RuleCatalogue:
    """The declared rules; read on the proxy's and the sink's threads, written by
    tests on the main thread, so every access takes the lock."""

    def __init__(self) -> None:
        self._rules: dict[str, ConversionRule] = {}
        self._partner: str | None = None
        self._lock = threading.Lock()

    def declare(self, rules: Iterable[ConversionRule] | Mapping[str | int, str], *,
                partner_id: str | int | None = None, source: Source | None = None) -> None:
        """Add rules: ``ConversionRule`` objects, or ``{rule_id: name}`` (all of
        ``source``). ``partner_id`` is the ad account's Insight Tag partner id, the
        account of every rule that names none."""
        items = ([ConversionRule(str(k), str(v), source) for k, v in rules.items()]
                 if isinstance(rules, Mapping) else list(rules))
        with self._lock:
            for rule in items:
                self._rules[str(rule.rule_id)] = rule
            if partner_id is not None:
                self._partner = str(partner_id)

    def forget(self) -> None:
        with self._lock:
            self._rules.clear()
            self._partner = None

    @contextmanager
    def declared(self, rules: Iterable[ConversionRule] | Mapping[str | int, str], *,
                 partner_id: str | int | None = None,
                 source: Source | None = None) -> Iterator[RuleCatalogue]:
        """Declare rules for a block, then restore what was declared before (another
        test in the same worker must not inherit them)."""
        with self._lock:
            saved = (dict(self._rules), self._partner)
        self.declare(rules, partner_id=partner_id, source=source)
        try:
            yield self
        finally:
            with self._lock:
                self._rules, self._partner = saved

    def get(self, rule_id: str | None) -> ConversionRule | None:
        if rule_id is None:
            return None
        with self._lock:
            rule = self._rules.get(rule_id)
        if rule is None:
            rule = next((r for r in _from_env(os.environ.get(RULES_ENV, ""))
                         if r.rule_id == rule_id), None)
        return rule

    def name_of(self, rule_id: str | None) -> str:
        rule = self.get(rule_id)
        if rule is not None:
            return rule.name
        return f"{UNDECLARED} {rule_id}" if rule_id else UNDECLARED

    def default_partner(self) -> str | None:
        with self._lock:
            partner = self._partner
        return partner or os.environ.get(PARTNER_ENV) or None

    def partner_of(self, rule_id: str | None) -> str | None:
        """The ad account (partner id) a rule belongs to, as far as anyone declared."""
        rule = self.get(rule_id)
        return (rule.partner_id if rule is not None else None) or self.default_partner()

    def is_declared(self, rule_id: str | None) -> bool:
        return self.get(rule_id) is not None

    def rule_ids(self) -> list[str]:
        """Every rule id declared, here or in the environment (``analyze``'s SQL shapes
        spell out their names and ad accounts)."""
        with self._lock:
            ids = list(self._rules)
        ids += [r.rule_id for r in _from_env(os.environ.get(RULES_ENV, ""))]
        return list(dict.fromkeys(ids))
