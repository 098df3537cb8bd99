/* pytest-pixelcheck offline stand-in for
 * https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=<PIXEL>&lib=ttq
 *
 * The proxy serves this file instead of TikTok's library so a test run never
 * depends on (or talks to) TikTok. It implements what TikTok's base code queues
 * (ttq.load, ttq.page, ttq.track, ttq.identify, ttq.instance(code).*) and sends
 * each hit the way TikTok's own library was seen sending it: a sendBeacon POST to
 * https://analytics.tiktok.com/api/v2/pixel whose text/plain body is JSON with
 * the event name at `event`, the dedup id at `event_id` (the 3rd argument of
 * ttq.track, "" when none was given), the pixel code at `context.pixel.code` and
 * an ISO-8601 `timestamp`. Event names go out exactly as the page wrote them
 * (real builds sometimes map CompletePayment <-> Purchase; this one never does).
 * identify() values are normalized and SHA-256 hashed in the browser, announced
 * in an "EnrichAM" hit with an empty event_id, and sent in `context.user` of
 * every later hit. The _ttp cookie (27 alphanumerics) is the browser id, sent as
 * `context.user.anonymous_id`; a `ttclid` landing-page parameter is kept in a
 * first-party `ttclid` cookie and sent as `context.ad.callback`.
 */
(function (window, document) {
  "use strict";
  var ttq = window[window.TiktokAnalyticsObject || "ttq"];
  if (!ttq) { return; }
  var ENDPOINT = "https://analytics.tiktok.com/api/v2/pixel";
  var LIBRARY = {name: "pixel.js", version: "2.2.1-pixelcheck"};
  var METHODS = ["page", "track", "identify", "instances", "debug", "on", "off", "once",
                 "ready", "alias", "group", "enableCookie", "disableCookie", "holdConsent",
                 "revokeConsent", "grantConsent"];

  function sdkidOf(src) {
    var match = /[?&]sdkid=([^&#]*)/.exec(src || "");
    return match ? decodeURIComponent(match[1]) : null;
  }
  var script = document.currentScript;
  var loadedFor = sdkidOf(script && script.src);

  // A second copy of this file (a second ttq.load before the first ran) only adds
  // its pixel: the runtime installed by the first copy serves every pixel.
  if (ttq.__pixelcheck) {
    if (loadedFor) { ttq.__pixelcheck.addPixel(loadedFor); }
    return;
  }

  var pixels = [];          // pixel codes in load order
  var userByPixel = {};     // pixel code -> hashed identify values
  var chain = Promise.resolve();  // keeps hits in call order despite async hashing

  function addPixel(code) {
    code = String(code);
    if (pixels.indexOf(code) === -1) {
      pixels.push(code);
      userByPixel[code] = userByPixel[code] || {};
    }
  }

  // --- cookies ---------------------------------------------------------------------
  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function setCookie(name, value, seconds) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" +
      seconds + "; SameSite=Lax";
  }
  var ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  function ensureTtp() {
    var ttp = getCookie("_ttp");
    if (!ttp) {
      var bytes = new Uint8Array(27);
      window.crypto.getRandomValues(bytes);
      ttp = Array.prototype.map.call(bytes, function (b) {
        return ALNUM.charAt(b % ALNUM.length);
      }).join("");
      setCookie("_ttp", ttp, 34128000);  // 395 days, the pixel cookie's 13 months
    }
    return ttp;
  }
  function ensureTtclid() {
    var match = /[?&]ttclid=([^&#]*)/.exec(window.location.search);
    if (match) {
      // case-sensitive and never altered: the server must send the same bytes
      setCookie("ttclid", decodeURIComponent(match[1]), 30 * 86400);
    }
    return getCookie("ttclid");
  }

  // --- identify: normalize, then SHA-256 in the browser ----------------------------
  var HEX64 = /^[0-9a-fA-F]{64}$/;
  function normalize(key, value) {
    var v = String(value).trim();
    if (key === "phone_number") {
      // E.164 with the "+": "+" then the digits (TikTok's rule, unlike Meta's)
      var digits = v.replace(/[^0-9]/g, "");
      if (v.charAt(0) !== "+" && digits.slice(0, 2) === "00") { digits = digits.slice(2); }
      return digits ? ("+" + digits).slice(0, 15) : "";
    }
    return v.toLowerCase();
  }
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    return window.crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }
  var IDENTIFY_KEYS = ["email", "phone_number", "external_id"];
  function hashIdentify(data) {
    var out = {};
    var jobs = [];
    IDENTIFY_KEYS.forEach(function (key) {
      var raw = data ? data[key] : undefined;
      if (raw === undefined || raw === null || raw === "") { return; }
      if (HEX64.test(String(raw).trim())) { out[key] = String(raw).trim().toLowerCase(); return; }
      var norm = normalize(key, raw);
      if (!norm) { return; }
      jobs.push(sha256hex(norm).then(function (h) { out[key] = h; }));
    });
    return Promise.all(jobs).then(function () { return out; });
  }

  // --- the hit ---------------------------------------------------------------------
  function messageId() {
    return "messageId-" + Date.now() + "-" + Math.random().toString(36).slice(2, 12);
  }
  function send(code, eventName, properties, options) {
    var user = {anonymous_id: ensureTtp()};
    var known = userByPixel[code] || {};
    Object.keys(known).forEach(function (k) { user[k] = known[k]; });
    var eventId = options && options.event_id !== undefined && options.event_id !== null
      ? String(options.event_id) : "";
    var body = {
      event: String(eventName),
      message_id: messageId(),
      event_id: eventId,
      is_onsite: false,
      timestamp: new Date().toISOString(),
      context: {
        ad: {callback: ensureTtclid() || "", sdk_env: "external"},
        device: {platform: "pc"},
        library: LIBRARY,
        page: {url: window.location.href, referrer: document.referrer},
        pixel: {code: code},
        user: user,
        userAgent: navigator.userAgent
      },
      properties: properties || {}
    };
    var text = JSON.stringify(body);
    // sendBeacon with a string body: Content-Type text/plain;charset=UTF-8, as seen
    if (!(navigator.sendBeacon && navigator.sendBeacon(ENDPOINT, text)) && window.fetch) {
      window.fetch(ENDPOINT, {method: "POST", body: text, keepalive: true, mode: "no-cors",
                              credentials: "include"}).catch(function () {});
    }
  }

  // --- commands --------------------------------------------------------------------
  function handle(targets, method, args) {
    if (method === "load") {
      addPixel(args[0]);
    } else if (method === "page") {
      chain = chain.then(function () {
        targets().forEach(function (code) { send(code, "Pageview", {}, null); });
      });
    } else if (method === "track") {
      chain = chain.then(function () {
        targets().forEach(function (code) { send(code, args[0], args[1], args[2]); });
      });
    } else if (method === "identify") {
      chain = chain.then(function () { return hashIdentify(args[0]); }).then(function (hashed) {
        targets().forEach(function (code) {
          Object.keys(hashed).forEach(function (k) { userByPixel[code][k] = hashed[k]; });
          // the real library announces advanced matching in its own hit, no event id
          send(code, "EnrichAM", {}, null);
        });
      });
    } else if (method === "ready") {
      chain = chain.then(function () { if (typeof args[0] === "function") { args[0](); } });
    }
    // debug, on, off, once, alias, group, cookie and consent calls: accepted, ignored offline
  }
  function allPixels() { return pixels.slice(); }

  // Pixels the base code asked for before this file ran (ttq.load is synchronous).
  Object.keys(ttq._i || {}).forEach(addPixel);
  if (loadedFor) { addPixel(loadedFor); }
  ensureTtp();
  ensureTtclid();

  // Replay what the base code queued: the global queue (every pixel), then each
  // ttq.instance(code) queue (that pixel only).
  var queued = Array.prototype.slice.call(ttq, 0);
  ttq.length = 0;
  queued.forEach(function (call) {
    handle(allPixels, call[0], Array.prototype.slice.call(call, 1));
  });
  Object.keys(ttq._i || {}).forEach(function (code) {
    var instanceQueue = ttq._i[code] || [];
    var calls = Array.prototype.slice.call(instanceQueue, 0);
    instanceQueue.length = 0;
    calls.forEach(function (call) {
      handle(function () { return [code]; }, call[0], Array.prototype.slice.call(call, 1));
    });
  });

  // From now on calls run at once instead of queueing.
  METHODS.forEach(function (method) {
    ttq[method] = function () { handle(allPixels, method, Array.prototype.slice.call(arguments)); };
  });
  ttq.load = function (code) { addPixel(code); };
  ttq.instance = function (code) {
    addPixel(code);
    var one = {};
    METHODS.forEach(function (method) {
      one[method] = function () {
        handle(function () { return [String(code)]; }, method,
               Array.prototype.slice.call(arguments));
      };
    });
    return one;
  };
  ttq.__pixelcheck = {addPixel: addPixel, version: LIBRARY.version};
  ttq.loaded = true;
})(window, document);
