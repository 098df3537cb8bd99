"""HTML of the shop's pages, built from escaped f-strings.

Element ids and input names are part of the test contract (Playwright drives them):
``#add-to-cart``, ``#checkout``, ``#checkout-form``, ``#place-order``, ``#order-id``,
``#product-link-<sku>`` and the checkout inputs ``email``, ``phone``, ``first_name``,
``last_name``, ``city``, ``zip``, ``country``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from html import escape

CSS = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; color: #222; }
header a { text-decoration: none; margin-right: 1rem; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; }
label { display: block; margin: .4rem 0; }
input { padding: .3rem; width: 16rem; }
button, .button { padding: .5rem 1rem; background: #1877f2; color: #fff; border: 0;
  border-radius: 4px; text-decoration: none; cursor: pointer; }
"""


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal
    currency: str = "USD"


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: int

    @property
    def total(self) -> Decimal:
        return self.product.price * self.quantity


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {escape(currency)}"


def layout(title: str, body: str, script: str) -> str:
    """A full page; ``script`` is trusted markup from the tracking builder."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} - Example Shop</title>
<style>{CSS}</style>
{script}
</head>
<body>
<header><a id="home" href="/">Example Shop</a><a id="cart-link" href="/cart">Cart</a></header>
<main>
<h1>{escape(title)}</h1>
{body}
</main>
</body>
</html>
"""


def product_list(products: Iterable[Product]) -> str:
    items = "\n".join(
        f'<li><a id="product-link-{escape(p.sku)}" href="/product/{escape(p.sku)}">'
        f"{escape(p.name)}</a> - {money(p.price, p.currency)}</li>"
        for p in products
    )
    return f'<ul id="products">\n{items}\n</ul>'


def product_page(product: Product) -> str:
    return f"""<p id="product-name">{escape(product.name)}</p>
<p id="product-price">{money(product.price, product.currency)}</p>
<form id="add-to-cart-form" method="post" action="/cart/add">
<input type="hidden" name="sku" value="{escape(product.sku)}">
<label>Quantity <input id="quantity" name="quantity" type="number" min="1" max="99" value="1">
</label>
<button id="add-to-cart" type="submit">Add to cart</button>
</form>"""


def cart_page(lines: list[Line]) -> str:
    if not lines:
        return '<p id="cart-empty">Your cart is empty. <a href="/">Keep shopping</a></p>'
    rows = "\n".join(
        f'<tr class="cart-line" data-sku="{escape(line.product.sku)}">'
        f"<td>{escape(line.product.name)}</td><td>{line.quantity}</td>"
        f"<td>{money(line.total, line.product.currency)}</td></tr>"
        for line in lines
    )
    total = sum((line.total for line in lines), Decimal(0))
    currency = lines[0].product.currency
    return f"""<table id="cart">
<tr><th>Product</th><th>Qty</th><th>Total</th></tr>
{rows}
</table>
<p id="cart-total">Total: {money(total, currency)}</p>
<p><a id="checkout" class="button" href="/checkout">Checkout</a></p>"""


CHECKOUT_FIELDS = (
    # (name, label, input type, default, required)
    ("email", "Email", "email", "", True),
    ("phone", "Phone", "tel", "", False),
    ("first_name", "First name", "text", "", False),
    ("last_name", "Last name", "text", "", False),
    ("city", "City", "text", "", False),
    ("zip", "ZIP", "text", "", False),
    ("country", "Country", "text", "US", False),
)


# a second click while the first submit is on its way would place a second order
DISABLE_ON_SUBMIT = """<script>document.getElementById("checkout-form").addEventListener(
"submit", function () { document.getElementById("place-order").disabled = true; });</script>"""


def checkout_page(lines: list[Line], error: str | None = None, *,
                  disable_on_submit: bool = True) -> str:
    if not lines:
        return cart_page(lines)
    inputs = "\n".join(
        f'<label>{escape(label)} <input id="{name}" name="{name}" type="{kind}" '
        f'value="{escape(default)}"{" required" if required else ""}></label>'
        for name, label, kind, default, required in CHECKOUT_FIELDS
    )
    total = sum((line.total for line in lines), Decimal(0))
    problem = f'<p id="checkout-error">{escape(error)}</p>' if error else ""
    return f"""{problem}<p id="checkout-total">To pay: {money(total, lines[0].product.currency)}</p>
<form id="checkout-form" method="post" action="/checkout">
{inputs}
<button id="place-order" type="submit">Place order</button>
</form>{DISABLE_ON_SUBMIT if disable_on_submit else ""}"""


def thanks_page(order_id: str, total: Decimal, currency: str, email: str) -> str:
    return f"""<p>Thank you! Your order <strong id="order-id">{escape(order_id)}</strong>
is confirmed.</p>
<p id="order-total">Total: {money(total, currency)}</p>
<p>A confirmation goes to <span id="order-email">{escape(email)}</span>.</p>
<p><a href="/">Back to the shop</a></p>"""


def message_page(text: str) -> str:
    return f'<p id="message">{escape(text)}</p><p><a href="/">Back to the shop</a></p>'


def consent_banner(*, fire_held: bool = True) -> str:
    """A minimal CMP: Accept sets the consent cookie and runs the page's held tags
    (``<script type="text/plain" data-consent>``), Deny sets it and runs nothing."""
    activate = """document.querySelectorAll('script[data-consent]').forEach(function (held) {
    var run = document.createElement('script'); run.text = held.text;
    held.parentNode.replaceChild(run, held); });""" if fire_held else ""
    return f"""<div id="consent-banner" role="dialog" aria-label="Cookie consent">
<p>We use cookies for ads measurement.</p>
<button id="consent-accept" type="button">Accept</button>
<button id="consent-deny" type="button">Deny</button>
</div>
<script>
(function () {{
  function answer(value) {{
    document.cookie = "shop_consent=" + value + "; path=/; max-age=31536000; SameSite=Lax";
    document.getElementById("consent-banner").remove();
  }}
  document.getElementById("consent-accept").addEventListener("click", function () {{
    answer("granted");
    {activate}
  }});
  document.getElementById("consent-deny").addEventListener("click", function () {{
    answer("denied");
  }});
}})();
</script>
"""


def spa_body(product: Product, *, double_pageview: bool = False,
             pageview_on_route: bool = True) -> str:
    """The single-page checkout: #spa-view shows the route; the buttons change it with
    history.pushState, and each change fires a virtual PageView (browser and, through
    /spa/api/pageview, server, with one id)."""
    fire = "pageview(); pageview();" if double_pageview else "pageview();"
    on_route = fire if pageview_on_route else ""
    return f"""<nav>
<button id="spa-product" type="button">Product</button>
<button id="spa-cart" type="button">Cart</button>
<button id="spa-checkout" type="button">Checkout</button>
</nav>
<div id="spa-view"></div>
<button id="spa-place-order" type="button">Place order</button>
<script>
(function () {{
  var routeId = null;
  function newId() {{ return "pageview." + Math.random().toString(16).slice(2, 14); }}
  function pageview() {{
    // one id per route change: a second call on the same change repeats it
    fbq("track", "PageView", {{}}, {{eventID: routeId}});
  }}
  function serverPageview() {{
    fetch("/spa/api/pageview", {{method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{event_id: routeId, url: location.href}})}});
  }}
  function render() {{
    var route = location.pathname.split("/").slice(2).join("/") || "home";
    document.getElementById("spa-view").textContent = "route: " + route +
      " ({escape(product.name)})";
  }}
  function go(path, first) {{
    if (!first) {{ history.pushState({{}}, "", path); }}
    routeId = newId();
    render();
    if (first) {{ pageview(); }} else {{ {on_route} }}
    serverPageview();
  }}
  window.spaGo = go;
  document.getElementById("spa-product").onclick = function () {{ go("/spa/product"); }};
  document.getElementById("spa-cart").onclick = function () {{ go("/spa/cart"); }};
  document.getElementById("spa-checkout").onclick = function () {{ go("/spa/checkout"); }};
  document.getElementById("spa-place-order").onclick = function () {{
    fetch("/spa/api/order", {{method: "POST", headers: {{"Content-Type": "application/json"}},
      body: "{{}}"}}).then(function (r) {{ return r.json(); }}).then(function (order) {{
        go("/spa/thanks/" + order.order_id);
        fbq("track", "Purchase", order.custom_data, {{eventID: order.event_id}});
      }});
  }};
  window.addEventListener("popstate", function () {{ go(location.pathname, true); }});
  go(location.pathname, true);
}})();
</script>"""
