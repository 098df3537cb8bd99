"""Drive the shop's checkout in a Playwright page, as a shopper would.

Shared by the test suite, the ``pixelcheck demo`` command and the benchmarks,
so all three exercise the same journey.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .faults import FAULT_COOKIE
from .tracking import Customer as TypedCustomer


@dataclass
class Customer(TypedCustomer):
    """What the shopper types at checkout; the defaults are messy on purpose (capitals,
    a formatted phone) so that skipped normalization steps change the hashes."""

    email: str = "Jane.Doe@Example.com"
    phone: str = "+1 (650) 555-1212"
    first_name: str = "Jane"
    last_name: str = "Doe"
    city: str = "Menlo Park"
    zip: str = "94025"


def set_faults(context: Any, base_url: str, faults: str | list[str] | None) -> None:
    """Switch the shop's faults for this browser context (a cookie the site reads)."""
    if not faults:
        return
    value = faults if isinstance(faults, str) else ",".join(faults)
    context.add_cookies([{"name": FAULT_COOKIE, "value": value, "url": base_url}])


def checkout(
    page: Any, base_url: str, *, sku: str = "sku-1", quantity: int = 1,
    customer: Customer | None = None,
) -> str:
    """Product -> cart -> checkout form -> thank-you page. Returns the order id."""
    fill_checkout(page, base_url, sku=sku, quantity=quantity, customer=customer)
    page.click("#place-order")
    page.wait_for_url("**/thanks/**")
    return page.inner_text("#order-id")


def fill_checkout(
    page: Any, base_url: str, *, sku: str = "sku-1", quantity: int = 1,
    customer: Customer | None = None,
) -> None:
    """Product -> cart -> the checkout form filled in, Place order not yet clicked."""
    customer = customer or Customer()
    page.goto(f"{base_url}/product/{sku}")
    if quantity != 1:
        page.fill("#quantity", str(quantity))
    page.click("#add-to-cart")
    page.wait_for_url("**/cart")
    page.click("#checkout")
    page.wait_for_url("**/checkout")
    for field, value in (("email", customer.email), ("phone", customer.phone),
                         ("first_name", customer.first_name),
                         ("last_name", customer.last_name), ("city", customer.city),
                         ("zip", customer.zip), ("country", customer.country)):
        page.fill(f"#{field}", value)
