"""The ways the shop's backend can send a Conversions API call: plain HTTP bodies, and
Meta's official SDKs used unchanged, as a real backend would.

Every client answers ``post(...) -> (status, body)``, with status None when the call
never got an HTTP answer (refused, reset, timed out); the sender retries on that.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from .tracking import Customer, norm_country

#: names for ``--capi-client``
CLIENTS = ("json", "form", "facebook-business", "facebook-business-async",
           "facebook-nodejs-business-sdk")


class CapiClient(Protocol):
    name: str

    def post(self, graph_url: str, api_version: str, pixel_id: str, access_token: str,
             event: dict[str, Any], customer: Customer | None, test_event_code: str | None,
             timeout: float) -> tuple[int | None, bytes]: ...

    def close(self) -> None: ...


def events_url(graph_url: str, api_version: str, pixel_id: str) -> str:
    return f"{graph_url.rstrip('/')}/{api_version}/{urllib.parse.quote(pixel_id, safe='')}/events"


def _urlopen(request: urllib.request.Request, timeout: float) -> tuple[int | None, bytes]:
    try:
        # the default opener honours HTTPS_PROXY/NO_PROXY and SSL_CERT_FILE from the env
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read() if exc.fp is not None else b""
    except (OSError, TimeoutError) as exc:  # URLError, refused, reset, timeout
        return None, str(exc).encode()


class JsonClient:
    """``POST .../events?access_token=`` with a JSON body ``{"data": [event]}``."""

    name = "json"

    def post(self, graph_url: str, api_version: str, pixel_id: str, access_token: str,
             event: dict[str, Any], customer: Customer | None, test_event_code: str | None,
             timeout: float) -> tuple[int | None, bytes]:
        body: dict[str, Any] = {"data": [event]}
        if test_event_code:
            body["test_event_code"] = test_event_code
        url = (f"{events_url(graph_url, api_version, pixel_id)}"
               f"?access_token={urllib.parse.quote(access_token, safe='')}")
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        return _urlopen(request, timeout)

    def close(self) -> None:
        pass


class FormClient:
    """A form body, ``data=<JSON array>&access_token=...``, as curl examples send it."""

    name = "form"

    def post(self, graph_url: str, api_version: str, pixel_id: str, access_token: str,
             event: dict[str, Any], customer: Customer | None, test_event_code: str | None,
             timeout: float) -> tuple[int | None, bytes]:
        fields = {"data": json.dumps([event]), "access_token": access_token}
        if test_event_code:
            fields["test_event_code"] = test_event_code
        request = urllib.request.Request(
            events_url(graph_url, api_version, pixel_id),
            data=urllib.parse.urlencode(fields).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return _urlopen(request, timeout)

    def close(self) -> None:
        pass


def sdk_objects(event: dict[str, Any], customer: Customer | None) -> Any:
    """The event as facebook-business objects. With a customer, the SDK gets the raw
    values as typed and does its own normalizing and hashing: that is what is tested."""
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.content import Content
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.user_data import UserData

    sent = event.get("user_data", {})
    user = UserData(
        client_ip_address=sent.get("client_ip_address"),
        client_user_agent=sent.get("client_user_agent"),
        fbp=sent.get("fbp"), fbc=sent.get("fbc"))
    if customer is not None:
        user.emails = [customer.email]
        if customer.phone:
            user.phones = [customer.phone]
        user.first_name = customer.first_name or None
        user.last_name = customer.last_name or None
        user.city = customer.city or None
        user.zip_code = customer.zip or None
        user.country_code = norm_country(customer.country) or None
        user.external_id = customer.customer_id
    data = event.get("custom_data", {})
    custom = CustomData(
        value=data.get("value"), currency=data.get("currency"),
        content_ids=data.get("content_ids"), content_type=data.get("content_type"),
        num_items=data.get("num_items"), order_id=data.get("order_id"),
        contents=[Content(product_id=c.get("id"), quantity=c.get("quantity"),
                          item_price=c.get("item_price")) for c in data.get("contents", [])]
        or None)
    return Event(
        event_name=event.get("event_name"), event_time=event.get("event_time"),
        event_id=event.get("event_id"), event_source_url=event.get("event_source_url"),
        action_source=ActionSource(event.get("action_source", "website")),
        user_data=user, custom_data=custom)


class FacebookBusinessClient:
    """Meta's official Python SDK, ``EventRequest(...).execute()``, unchanged.

    The Graph base URL is the SDK's own setting, ``FacebookSession.GRAPH``; through
    the proxy it stays https://graph.facebook.com and ``requests`` reads HTTPS_PROXY
    and REQUESTS_CA_BUNDLE from the environment.
    """

    name = "facebook-business"

    def __init__(self) -> None:
        # The SDK keeps one default API (token) per process: a backend that switches
        # tokens must not interleave two calls.
        self._lock = threading.Lock()

    def post(self, graph_url: str, api_version: str, pixel_id: str, access_token: str,
             event: dict[str, Any], customer: Customer | None, test_event_code: str | None,
             timeout: float) -> tuple[int | None, bytes]:
        from facebook_business.adobjects.serverside.event_request import EventRequest
        from facebook_business.api import FacebookAdsApi
        from facebook_business.exceptions import FacebookRequestError
        from facebook_business.session import FacebookSession

        with self._lock:
            FacebookSession.GRAPH = graph_url.rstrip("/")
            FacebookAdsApi.init(access_token=access_token, timeout=timeout,
                                api_version=api_version, crash_log=False)
            request = EventRequest(pixel_id=pixel_id, events=[sdk_objects(event, customer)],
                                   test_event_code=test_event_code)
            try:
                response = request.execute()
            except FacebookRequestError as exc:
                return exc.http_status(), exc.body() if isinstance(exc.body(), bytes) \
                    else json.dumps(exc.body()).encode()
            except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
                return None, str(exc).encode()
            return 200, json.dumps({"events_received": response.events_received,
                                    "fbtrace_id": response.fbtrace_id}).encode()

    def close(self) -> None:
        pass


class FacebookBusinessAsyncClient:
    """The same SDK's ``EventRequestAsync`` (aiohttp), awaited on a loop of its own.

    It reads the base URL from ``FacebookSession.GRAPH`` too, but aiohttp ignores
    HTTPS_PROXY unless told to and the SDK pins its own CA bundle: it can reach the
    sink only through the base URL.
    """

    name = "facebook-business-async"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def post(self, graph_url: str, api_version: str, pixel_id: str, access_token: str,
             event: dict[str, Any], customer: Customer | None, test_event_code: str | None,
             timeout: float) -> tuple[int | None, bytes]:
        import aiohttp
        from facebook_business.adobjects.serverside.event_request_async import (
            EventRequestAsync,
        )
        from facebook_business.api import FacebookAdsApi
        from facebook_business.session import FacebookSession

        with self._lock:
            FacebookSession.GRAPH = graph_url.rstrip("/")
            FacebookAdsApi.init(access_token=access_token, api_version=api_version,
                                crash_log=False)
            request = EventRequestAsync(pixel_id=pixel_id,
                                        events=[sdk_objects(event, customer)],
                                        test_event_code=test_event_code)

            async def send() -> tuple[int | None, bytes]:
                # execute() reads only the JSON answer; the status comes from create_event's
                # own session, opened here so a 4xx is seen as such
                async with aiohttp.ClientSession(
                        timeout=aiohttp.ClientTimeout(total=timeout)) as session:
                    try:
                        answer = await request.create_event(session)
                    except aiohttp.ClientResponseError as exc:
                        return exc.status, str(exc).encode()
                status = 400 if isinstance(answer, dict) and "error" in answer else 200
                return status, json.dumps(answer).encode()

            try:
                return asyncio.run(send())
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return None, str(exc).encode()

    def close(self) -> None:
        pass


class NodeBusinessSdkClient:
    """Meta's official Node SDK, ``facebook-nodejs-business-sdk``, in a node process of
    its own (``node_capi/sender.js``): ``new EventRequest(...).execute()``."""

    name = "facebook-nodejs-business-sdk"

    def __init__(self) -> None:
        from .node_client import NodeSdkTransport

        # started with the shop, not on the first page's events, so they are not late
        self._node = NodeSdkTransport().start()

    def post(self, graph_url: str, api_version: str, pixel_id: str, access_token: str,
             event: dict[str, Any], customer: Customer | None, test_event_code: str | None,
             timeout: float) -> tuple[int | None, bytes]:
        typed = None
        if customer is not None:
            typed = {"email": customer.email, "phone": customer.phone,
                     "first_name": customer.first_name, "last_name": customer.last_name,
                     "city": customer.city, "zip": customer.zip,
                     "country": norm_country(customer.country),
                     "external_id": customer.customer_id}
        return self._node.post(graph_url, api_version, pixel_id, access_token, event, typed,
                               test_event_code, timeout)

    def close(self) -> None:
        self._node.close()


#: clients whose backend builds fbp/fbc with Meta's Parameter Builder, as Meta's SDK
#: integration guide pairs them
PARAM_BUILDER_CLIENTS = ("facebook-business", "facebook-business-async")


def param_builder_ids(host: str, query: str, cookies: dict[str, str], referer: str | None
                      ) -> tuple[str | None, str | None, list[str]]:
    """fbp, fbc and the Set-Cookie headers from Meta's ``capi-param-builder-python``.

    It may mint ``_fbp`` (and ``_fbc`` from an ``fbclid``) on the server; the cookies it
    asks for let the pixel reuse them, so both sides carry one value. For an IP or a
    bare host name its cookie domain is not one a browser accepts: the cookie is then
    host-only.
    """
    from capi_param_builder import ParamBuilder

    builder = ParamBuilder()
    builder.process_request(host, urllib.parse.parse_qs(query), cookies, referer)
    headers = []
    for cookie in builder.get_cookies_to_set():
        header = f"{cookie.name}={cookie.value}; Path=/; Max-Age={cookie.max_age}"
        domain = str(cookie.domain or "")
        if "." in domain and not domain.startswith("[") and not domain.replace(".", "").isdigit():
            header += f"; Domain={domain}"
        headers.append(header)
    return builder.get_fbp() or None, builder.get_fbc() or None, headers


def make_client(name: str) -> CapiClient:
    if name == "json":
        return JsonClient()
    if name == "form":
        return FormClient()
    if name == "facebook-business":
        return FacebookBusinessClient()
    if name == "facebook-business-async":
        return FacebookBusinessAsyncClient()
    if name == "facebook-nodejs-business-sdk":
        return NodeBusinessSdkClient()
    raise ValueError(f"unknown Conversions API client {name!r}; one of {', '.join(CLIENTS)}")
