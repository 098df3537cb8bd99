/* pytest-pixelcheck offline stand-in for https://www.redditstatic.com/ads/pixel.js
 *
 * The proxy serves this file instead of Reddit's library so a test run never depends
 * on (or talks to) Reddit. It implements what Reddit's base code queues on `rdt`
 * (rdt('init', PIXEL_ID, {...}), rdt('track', NAME, {...}),
 * rdt('disableFirstPartyCookies')) and sends each event the way Reddit's own library
 * was seen sending it: an image GET to https://alb.reddit.com/rp.gif with the event
 * name at `event`, the pixel at `id` and the metadata as `m.*` parameters, in the
 * order of a 2025 build (ts, id, event, m.itemCount, m.value, m.valueDecimal,
 * m.currency, m.transactionId, m.customEventName, m.products, m.conversionId, uuid,
 * aaid, em, pn, external_id, idfa, integration, partner, opt_out, sh, sw, v, dpm,
 * dpcc, dprc).
 *
 * - m.conversionId and m.transactionId are the SHA-256 hex of the ids the page passed
 *   (as Reddit's library sends them).
 * - Match keys given to init (or to track) are canonicalized the way Reddit documents
 *   it and sent as SHA-256 hex (em, pn, external_id); a 64-hex value passes through.
 * - The amount goes out as m.valueDecimal (currency units), m.value stays empty, as in
 *   a 2024 build's hit; with init's useDecimalCurrencyValues: false it goes to m.value.
 * - The _rdt_uuid first-party cookie is `{ms timestamp}.{uuid}`; the hit carries the
 *   UUID part as `uuid`. An rdt_cid landing-page parameter is kept in a first-party
 *   `_rdt_cid` cookie and sent as `click_id` (no Reddit build was seen sending a click
 *   id; Cloudflare's Reddit component names it so).
 * - Like the library, init fetches the pixel's config from pixel-config.reddit.com and
 *   a telemetry config from www.redditstatic.com/ads/conversions-config/ (answered
 *   offline by the proxy, never conversions).
 *
 * Hashing is synchronous (a small SHA-256 below), so every hit leaves in call order,
 * before the page's load event: a test that navigates right after loading never loses
 * a hit to a pending promise.
 */
(function (window, document) {
  "use strict";
  var rdt = window.rdt;
  if (!rdt || rdt.__pixelcheck) { return; }
  rdt.__pixelcheck = true;

  var ENDPOINT = "https://alb.reddit.com/rp.gif";
  var BUILD = "rdt_pxchk001";
  var pixels = [];          // pixel ids in init order
  var optionsByPixel = {};  // pixel id -> init options
  var firstPartyCookies = true;
  var inFlight = [];        // images kept alive until they load

  // --- SHA-256 (synchronous), constants derived from the primes as in FIPS 180-4 ---
  var K = [], H0 = [];
  (function () {
    var found = 0, candidate = 2;
    function frac(x) { return ((x - Math.floor(x)) * 4294967296) | 0; }
    while (found < 64) {
      var prime = true;
      for (var d = 2; d * d <= candidate; d++) {
        if (candidate % d === 0) { prime = false; break; }
      }
      if (prime) {
        if (found < 8) { H0[found] = frac(Math.pow(candidate, 1 / 2)); }
        K[found] = frac(Math.pow(candidate, 1 / 3));
        found++;
      }
      candidate++;
    }
  })();
  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    var length = bytes.length;
    var padded = new Uint8Array((((length + 8) >> 6) + 1) << 6);
    padded.set(bytes);
    padded[length] = 0x80;
    var bits = length * 8, end = padded.length;
    padded[end - 5] = Math.floor(bits / 4294967296) & 0xff;
    for (var b = 0; b < 4; b++) { padded[end - 1 - b] = (bits >>> (8 * b)) & 0xff; }
    var h = H0.slice(), w = new Array(64);
    for (var offset = 0; offset < end; offset += 64) {
      for (var i = 0; i < 16; i++) {
        var at = offset + 4 * i;
        w[i] = (padded[at] << 24) | (padded[at + 1] << 16) | (padded[at + 2] << 8) |
          padded[at + 3];
      }
      for (i = 16; i < 64; i++) {
        var s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        var s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
      }
      var a = h[0], bb = h[1], c = h[2], d2 = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (i = 0; i < 64; i++) {
        var t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
          K[i] + w[i]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        hh = g; g = f; f = e; e = (d2 + t1) | 0; d2 = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + bb) | 0; h[2] = (h[2] + c) | 0;
      h[3] = (h[3] + d2) | 0; h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0;
      h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
    }
    return h.map(function (word) { return ("0000000" + (word >>> 0).toString(16)).slice(-8); })
      .join("");
  }

  // --- Reddit's canonicalization of match keys ---------------------------------------
  var HEX64 = /^[0-9a-fA-F]{64}$/;
  function canonicalEmail(value) {
    var text = String(value).trim().toLowerCase();
    var at = text.lastIndexOf("@");
    if (at <= 0) { return text; }
    // username: drop the +alias, then every non-alphanumeric character
    var local = text.slice(0, at).split("+")[0].replace(/[^a-z0-9]/g, "");
    return local + "@" + text.slice(at + 1).trim();
  }
  var EXTENSIONS = ["ext", "x", "anexo", "#", "poste", "int"];
  function canonicalPhone(value) {
    var text = String(value).trim(), lower = text.toLowerCase();
    for (var i = 0; i < EXTENSIONS.length; i++) {
      var index = lower.indexOf(EXTENSIONS[i]);
      if (index !== -1) { text = text.slice(0, index); break; }
    }
    var digits = text.replace(/[^0-9]/g, "");
    if (String(value).trim().charAt(0) !== "+" && digits.slice(0, 2) === "00") {
      digits = digits.slice(2);  // the international call prefix, not part of the number
    }
    return digits ? "+" + digits : "";
  }
  var CANONICAL = {
    em: canonicalEmail,
    pn: canonicalPhone,
    external_id: function (v) { return String(v).trim(); },
    idfa: function (v) { return String(v).trim().toUpperCase(); },
    aaid: function (v) { return String(v).trim().toLowerCase(); }
  };
  function hashedKey(key, value) {
    if (value === undefined || value === null || value === "") { return ""; }
    var text = String(value).trim();
    if (HEX64.test(text)) { return text.toLowerCase(); }
    var canonical = CANONICAL[key](value);
    return canonical ? sha256hex(canonical) : "";
  }
  function hashedId(value) {
    if (value === undefined || value === null || value === "") { return ""; }
    return sha256hex(String(value));
  }

  // --- cookies -------------------------------------------------------------------------
  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function setCookie(name, value, days) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" +
      (days * 86400) + "; SameSite=Strict";
  }
  function newUuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (x) {
      return ("0" + x.toString(16)).slice(-2);
    }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }
  var sessionUuid = null;
  function ensureUuid() {
    // _rdt_uuid is "{ms timestamp}.{uuid}"; the hit sends the UUID part
    var cookie = firstPartyCookies ? getCookie("_rdt_uuid") : null;
    if (cookie && cookie.indexOf(".") > 0) { return cookie.split(".").pop(); }
    if (!sessionUuid) { sessionUuid = newUuid(); }
    if (firstPartyCookies) { setCookie("_rdt_uuid", Date.now() + "." + sessionUuid, 90); }
    return sessionUuid;
  }
  function clickId() {
    var match = /[?&]rdt_cid=([^&#]*)/.exec(window.location.search);
    if (match) {
      var value = decodeURIComponent(match[1]);
      // never altered: the backend must send these bytes as click_id
      if (firstPartyCookies) { setCookie("_rdt_cid", value, 30); }
      return value;
    }
    return firstPartyCookies ? getCookie("_rdt_cid") : null;
  }

  // --- init and track ------------------------------------------------------------------
  function fetchConfigs(pixelId) {
    if (!window.fetch) { return; }
    var id = encodeURIComponent(pixelId);
    [
      "https://pixel-config.reddit.com/pixels/" + id + "/config",
      "https://www.redditstatic.com/ads/conversions-config/v1/pixel/config/" + id + "_telemetry"
    ].forEach(function (url) {
      window.fetch(url, {mode: "no-cors", credentials: "omit"}).catch(function () {});
    });
  }
  function init(pixelId, options) {
    if (!pixelId) { return; }
    pixelId = String(pixelId);
    var known = optionsByPixel[pixelId] || {};
    var given = options || {};
    Object.keys(given).forEach(function (k) { known[k] = given[k]; });
    optionsByPixel[pixelId] = known;
    if (pixels.indexOf(pixelId) === -1) {
      pixels.push(pixelId);
      fetchConfigs(pixelId);
    }
    ensureUuid();
    clickId();
  }
  function pick(meta, options, key) {
    if (meta && meta[key] !== undefined && meta[key] !== null && meta[key] !== "") {
      return meta[key];
    }
    return options[key];
  }
  function show(value) { return value === undefined || value === null ? "" : String(value); }
  function send(pixelId, eventName, meta) {
    var options = optionsByPixel[pixelId] || {};
    meta = meta || {};
    var decimal = options.useDecimalCurrencyValues !== false;
    var value = meta.value;
    var products = meta.products;
    var params = [
      ["ts", String(Date.now())],
      ["id", pixelId],
      ["event", String(eventName)],
      ["m.itemCount", show(meta.itemCount)],
      ["m.value", decimal ? "" : show(value)],
      ["m.valueDecimal", decimal ? show(value) : ""],
      ["m.currency", show(meta.currency)],
      ["m.transactionId", hashedId(meta.transactionId)],
      ["m.customEventName", show(meta.customEventName)],
      ["m.products", products === undefined || products === null ? "" :
        (typeof products === "string" ? products : JSON.stringify(products))],
      ["m.conversionId", hashedId(meta.conversionId)],
      ["uuid", ensureUuid()],
      ["aaid", hashedKey("aaid", pick(meta, options, "aaid"))],
      ["em", hashedKey("em", pick(meta, options, "email"))],
      ["pn", hashedKey("pn", pick(meta, options, "phoneNumber"))],
      ["external_id", hashedKey("external_id", pick(meta, options, "externalId"))],
      ["idfa", hashedKey("idfa", pick(meta, options, "idfa"))],
      ["integration", "reddit"],
      ["partner", show(options.partner)],
      ["opt_out", options.optOut ? "1" : "0"],
      ["sh", show(window.screen && window.screen.height)],
      ["sw", show(window.screen && window.screen.width)],
      ["v", BUILD],
      ["dpm", show(options.dpm)],
      ["dpcc", show(options.dpcc)],
      ["dprc", show(options.dprc)]
    ];
    var click = clickId();
    if (click) { params.push(["click_id", click]); }
    var query = params.map(function (kv) {
      return encodeURIComponent(kv[0]) + "=" + encodeURIComponent(kv[1]);
    }).join("&");
    var image = new Image(1, 1);
    inFlight.push(image);
    image.onload = image.onerror = function () {
      var at = inFlight.indexOf(image);
      if (at !== -1) { inFlight.splice(at, 1); }
    };
    image.src = ENDPOINT + "?" + query;
  }
  function track(eventName, meta) {
    if (!eventName) { return; }
    for (var i = 0; i < pixels.length; i++) { send(pixels[i], eventName, meta); }
  }

  function dispatch(args) {
    var method = args[0];
    try {
      if (method === "init") { init(args[1], args[2]); }
      else if (method === "track") { track(args[1], args[2]); }
      else if (method === "disableFirstPartyCookies") { firstPartyCookies = false; }
      // other methods of the real library (consent, debug) have nothing to send offline
    } catch (err) {
      if (window.console) { window.console.warn("pixelcheck Reddit stand-in:", err); }
    }
  }

  rdt.sendEvent = function () { dispatch(Array.prototype.slice.call(arguments)); };
  var queued = rdt.callQueue || [];
  rdt.callQueue = [];
  for (var q = 0; q < queued.length; q++) { dispatch(Array.prototype.slice.call(queued[q])); }
})(window, document);
