/* pytest-pixelcheck offline stand-in for https://www.googletagmanager.com/gtag/js?id=G-...
 *
 * The proxy serves this file instead of Google's library, so a test run never
 * depends on (or talks to) Google. It reads the commands a site pushes to
 * window.dataLayer through the standard snippet's gtag() -- before and after it
 * loaded -- and sends hits in gtag.js's GA4 wire format:
 *
 *   - ONE request per event, everything in the query string, POST with an empty
 *     body (fetch keepalive, else sendBeacon, else an image GET), to
 *     https://www.google-analytics.com/g/collect, as Google's builds do;
 *   - v=2, tid, cid (from the _ga cookie), sid/sct/seg (from the _ga_<id> cookie),
 *     dl, dr, dt, en, _et, ep.<name> (text), epn.<name> (numbers), cu, pr1..prN;
 *   - user-provided data from gtag('set', 'user_data', {...}) as
 *     em=tv.1~em.<digest>~pn.<digest>~fn0.<digest>..., each value normalized the
 *     Google way and its SHA-256 base64url encoded, hashed in the browser.
 *
 * Commands: js, config (sends page_view unless send_page_view: false), event,
 * set (user_data, or shared parameters), consent (gcs). Anything else is accepted
 * and ignored. No remote configuration, no doubleclick copies, no Google signals.
 */
(function (window, document) {
  "use strict";
  if (window.__pixelcheckGtag) { return; }
  window.__pixelcheckGtag = true;

  var VERSION = "pixelcheck-gtag-1";
  var ENDPOINT = "https://www.google-analytics.com/g/collect";
  var SESSION_TIMEOUT_S = 30 * 60;
  var dataLayer = window.dataLayer = window.dataLayer || [];
  var configs = {};        // measurement id -> config parameters
  var configOrder = [];
  var shared = {};         // gtag('set', {...})
  var userData = null;     // the raw gtag('set', 'user_data', {...}), hashed at send time
  var consent = {};        // gtag('consent', ...): analytics_storage / ad_storage
  var hitCount = 0;
  var lastHit = Date.now();
  var pageLoadId = String(Math.floor(Math.random() * 2147483647));
  var chain = Promise.resolve();  // keeps hits in call order despite async hashing

  // --- cookies: _ga (client id) and _ga_<id> (session) ----------------------------------

  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function setCookie(name, value) {
    // two years, as gtag.js sets _ga
    document.cookie = name + "=" + value + "; path=/; max-age=63072000; SameSite=Lax";
  }
  function nowSeconds() { return Math.floor(Date.now() / 1000); }

  // _ga = GA1.1.<random>.<first seen, seconds>; the client id is the last two parts
  var firstVisit = false;
  function clientId() {
    var ga = getCookie("_ga");
    var parts = ga ? ga.split(".") : [];
    if (parts.length >= 4) { return parts.slice(-2).join("."); }
    var cid = Math.floor(Math.random() * 2147483647) + "." + nowSeconds();
    setCookie("_ga", "GA1.1." + cid);
    firstVisit = true;
    return cid;
  }

  // _ga_<id without "G-"> = GS1.1.<session id>.<session count>.<engaged>.<last hit>.0.0.0
  function session(measurementId) {
    var name = "_ga_" + measurementId.replace(/^G-/, "");
    var parts = (getCookie(name) || "").split(".");
    var now = nowSeconds();
    var state = {sid: null, sct: 0, seg: 0, started: false};
    if (parts.length >= 6 && parts[0] === "GS1") {
      state.sid = parts[2]; state.sct = Number(parts[3]) || 1; state.seg = Number(parts[4]) || 0;
      if (now - (Number(parts[5]) || 0) > SESSION_TIMEOUT_S) { state.sid = null; }
    }
    if (!state.sid) {
      state.sid = String(now); state.sct += 1; state.seg = 0; state.started = true;
    }
    return state;
  }
  function touchSession(measurementId, state) {
    var name = "_ga_" + measurementId.replace(/^G-/, "");
    setCookie(name, ["GS1", "1", state.sid, state.sct, state.seg, nowSeconds(), "0", "0", "0"]
      .join("."));
  }

  // --- user-provided data: Google's normalization, SHA-256, base64url -------------------

  function normEmail(v) {
    var t = String(v).replace(/\s+/g, "").toLowerCase();
    var at = t.lastIndexOf("@");
    if (at > 0) {
      var domain = t.slice(at + 1);
      if (domain === "gmail.com" || domain === "googlemail.com") {
        t = t.slice(0, at).replace(/\./g, "") + "@" + domain;
      }
    }
    return t;
  }
  function normPhone(v) {
    var t = String(v).trim();
    var digits = t.replace(/[^0-9]/g, "");
    if (!digits) { return ""; }
    if (t.charAt(0) !== "+" && digits.slice(0, 2) === "00") { digits = digits.slice(2); }
    return "+" + digits;
  }
  function normName(v) {
    return String(v).replace(/[^\p{L} ]/gu, "").replace(/\s+/g, " ").trim().toLowerCase();
  }
  function normStreet(v) {
    return String(v).replace(/[^\p{L}\p{Nd} ]/gu, "").replace(/\s+/g, " ").trim().toLowerCase();
  }
  function sha256b64url(text) {
    if (!(window.crypto && window.crypto.subtle)) { return Promise.resolve(null); }
    var bytes = new TextEncoder().encode(text);
    return window.crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      var s = "";
      new Uint8Array(buf).forEach(function (b) { s += String.fromCharCode(b); });
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    });
  }
  function asList(v) { return Array.isArray(v) ? v : (v === undefined || v === null ? [] : [v]); }

  // -> "tv.1~em.<h>~pn.<h>~fn0.<h>~ln0.<h>~sa0.<h>~ct0.<city>~rg0..~pc0..~co0.."
  function encodeUserData(data) {
    if (!data) { return Promise.resolve(null); }
    var tokens = [];
    var jobs = [];
    function hashed(key, value, norm) {
      var n = norm(value);
      if (!n) { return; }
      var slot = {key: key, value: null};
      tokens.push(slot);
      jobs.push(sha256b64url(n).then(function (h) { slot.value = h; }));
    }
    function plain(key, value) {
      if (value === undefined || value === null || String(value).trim() === "") { return; }
      // the query encoding of the whole em= value covers spaces and the like
      tokens.push({key: key, value: String(value).trim()});
    }
    asList(data.email).forEach(function (v) { hashed("em", v, normEmail); });
    asList(data.phone_number).forEach(function (v) { hashed("pn", v, normPhone); });
    asList(data.address).forEach(function (a, i) {
      if (!a) { return; }
      hashed("fn" + i, a.first_name || "", normName);
      hashed("ln" + i, a.last_name || "", normName);
      hashed("sa" + i, a.street || "", normStreet);
      plain("ct" + i, a.city);
      plain("rg" + i, a.region);
      plain("pc" + i, a.postal_code);
      plain("co" + i, a.country);
    });
    return Promise.all(jobs).then(function () {
      var parts = ["tv.1"];
      tokens.forEach(function (t) { if (t.value) { parts.push(t.key + "." + t.value); } });
      // an empty user_data still goes out as "tv.1~em." as Google's tag does
      return parts.length > 1 ? parts.join("~") : "tv.1~em.";
    });
  }

  // --- hits -----------------------------------------------------------------------------

  var ITEM_KEYS = {
    item_id: "id", item_name: "nm", price: "pr", quantity: "qt", item_brand: "br",
    item_category: "ca", item_category2: "c2", item_category3: "c3", item_category4: "c4",
    item_category5: "c5", item_variant: "va", coupon: "cp", discount: "ds",
    affiliation: "af", index: "lp", item_list_id: "li", item_list_name: "ln",
    location_id: "lo"
  };
  function encodeItem(item) {
    var parts = [];
    var custom = 0;
    Object.keys(item || {}).forEach(function (k) {
      var v = item[k];
      if (v === undefined || v === null || typeof v === "object") { return; }
      if (ITEM_KEYS[k]) { parts.push(ITEM_KEYS[k] + String(v)); }
      else { parts.push("k" + custom + k, "v" + custom + String(v)); custom += 1; }
    });
    return parts.join("~");
  }

  // parameters that are not event parameters: they steer the tag itself
  var TAG_KEYS = {send_page_view: 1, send_to: 1, user_data: 1, event_callback: 1,
                  event_timeout: 1, groups: 1, cookie_domain: 1, cookie_flags: 1,
                  cookie_prefix: 1, cookie_expires: 1, page_location: 1,
                  page_referrer: 1, page_title: 1, debug_mode: 1, user_id: 1, items: 1,
                  currency: 1};

  function buildParams(measurementId, eventName, params) {
    var cid = clientId();
    var s = session(measurementId);
    var now = Date.now();
    hitCount += 1;
    var q = [
      ["v", "2"], ["tid", measurementId], ["gtm", VERSION], ["_p", pageLoadId],
      ["cid", cid], ["ul", (navigator.language || "").toLowerCase()],
      ["sr", screen.width + "x" + screen.height], ["_s", String(hitCount)],
      ["sid", s.sid], ["sct", String(s.sct)], ["seg", String(s.seg)],
      ["dl", params.page_location || window.location.href],
      ["dr", params.page_referrer || document.referrer],
      ["dt", params.page_title || document.title],
      ["en", eventName], ["_et", String(Math.max(now - lastHit, 1))]
    ];
    if (firstVisit) { q.push(["_fv", "1"]); firstVisit = false; }
    if (s.started) { q.push(["_ss", "1"]); }
    if (params.debug_mode) { q.push(["_dbg", "1"]); }
    if (params.user_id) { q.push(["uid", String(params.user_id)]); }
    if (consent.analytics_storage || consent.ad_storage) {
      q.push(["gcs", "G1" + (consent.ad_storage === "granted" ? "1" : "0") +
                     (consent.analytics_storage === "granted" ? "1" : "0")]);
    }
    if (params.currency) { q.push(["cu", String(params.currency)]); }
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (TAG_KEYS[k] || v === undefined || v === null || typeof v === "object" ||
          typeof v === "function") { return; }
      q.push([(typeof v === "number" ? "epn." : "ep.") + k, String(v)]);
    });
    asList(params.items).forEach(function (item, i) {
      q.push(["pr" + (i + 1), encodeItem(item)]);
    });
    lastHit = now;
    s.seg = 1;
    touchSession(measurementId, s);
    return q;
  }

  function send(query) {
    var url = ENDPOINT + "?" + query.map(function (p) {
      return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]);
    }).join("&");
    // POST with an empty body, everything in the query: what gtag.js sends today
    if (window.fetch) {
      window.fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                         keepalive: true, cache: "no-store"}).catch(function () {});
    } else if (navigator.sendBeacon) {
      navigator.sendBeacon(url);
    } else {
      new Image(1, 1).src = url;
    }
  }

  function merge() {
    var out = {};
    for (var i = 0; i < arguments.length; i++) {
      var o = arguments[i] || {};
      Object.keys(o).forEach(function (k) { out[k] = o[k]; });
    }
    return out;
  }

  function fire(measurementId, eventName, params) {
    var snapshot = userData;
    chain = chain.then(function () { return encodeUserData(snapshot); }).then(function (em) {
      var q = buildParams(measurementId, eventName, params);
      if (em) { q.push(["em", em]); }
      send(q);
    }).catch(function (err) {
      if (window.console) { window.console.warn("pixelcheck gtag stand-in:", err); }
    });
  }

  function targets(params) {
    var to = params && params.send_to;
    if (!to) { return configOrder.slice(); }
    return asList(to).filter(function (id) { return id in configs; });
  }

  function handle(args) {
    var command = args[0];
    if (command === "config") {
      var id = String(args[1]);
      var params = args[2] || {};
      if (!(id in configs)) { configOrder.push(id); }
      configs[id] = params;
      if (params.user_data) { userData = params.user_data; }
      if (id.indexOf("G-") === 0 && params.send_page_view !== false) {
        fire(id, "page_view", merge(shared, params));
      }
    } else if (command === "event") {
      var name = String(args[1]);
      var eventParams = args[2] || {};
      targets(eventParams).forEach(function (target) {
        if (target.indexOf("G-") !== 0) { return; }
        fire(target, name, merge(shared, configs[target], eventParams));
      });
    } else if (command === "set") {
      if (args[1] === "user_data") { userData = args[2] || null; }
      else if (args[1] && typeof args[1] === "object") { shared = merge(shared, args[1]); }
    } else if (command === "consent") {
      consent = merge(consent, args[2]);
    }
    // "js", "get" and the rest: nothing to send offline
  }

  function isCommand(entry) {
    return entry && typeof entry === "object" && typeof entry.length === "number" &&
      typeof entry[0] === "string";
  }

  // replay what the page queued before this script loaded, then take new pushes
  var queued = dataLayer.slice();
  var originalPush = dataLayer.push;
  dataLayer.push = function () {
    var result = originalPush.apply(dataLayer, arguments);
    for (var i = 0; i < arguments.length; i++) {
      if (isCommand(arguments[i])) { handle(arguments[i]); }
    }
    return result;
  };
  for (var i = 0; i < queued.length; i++) {
    if (isCommand(queued[i])) { handle(queued[i]); }
  }
})(window, document);
