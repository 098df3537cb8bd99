/* pytest-pixelcheck offline stand-in for connect.facebook.net/en_US/fbevents.js.
 *
 * The proxy serves this file instead of Meta's library so a test run never
 * depends on (or talks to) Meta. It implements the commands a site calls
 * (init, track, trackCustom, trackSingle, trackSingleCustom) and sends hits in
 * the Pixel's wire format to https://www.facebook.com/tr/, which the proxy
 * captures: GET image beacons, or a sendBeacon POST with a form body when the
 * URL would be too long. Advanced matching values are normalized and SHA-256
 * hashed in the browser, as the real library does.
 */
(function (window, document) {
  "use strict";
  var fbq = window.fbq;
  if (!fbq || fbq.__pixelcheck) { return; }
  var VERSION = "2.9.0-pixelcheck";
  var ENDPOINT = "https://www.facebook.com/tr/";
  var MAX_GET_URL = 2000;
  var pixels = {};        // pixel id -> advanced matching data (hashed)
  var pixelOrder = [];
  var chain = Promise.resolve();  // keeps hits in call order despite async hashing

  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function setCookie(name, value) {
    document.cookie = name + "=" + value + "; path=/; max-age=7776000; SameSite=Lax";
  }
  function ensureFbp() {
    var fbp = getCookie("_fbp");
    if (!fbp) {
      fbp = "fb.1." + Date.now() + "." + Math.floor(Math.random() * 2147483647);
      setCookie("_fbp", fbp);
    }
    return fbp;
  }
  function ensureFbc() {
    var match = /[?&]fbclid=([^&#]*)/.exec(window.location.search);
    if (match) {
      var fbclid = decodeURIComponent(match[1]);
      var current = getCookie("_fbc");
      // the 4th part is the click id; Meta's Parameter Builder may append a 5th
      if (!current || current.split(".")[3] !== fbclid) {
        setCookie("_fbc", "fb.1." + Date.now() + "." + fbclid);
      }
    }
    return getCookie("_fbc");
  }

  var HEX64 = /^[0-9a-f]{64}$/;
  function normalize(key, value) {
    var v = String(value).trim().toLowerCase();
    if (key === "ph") { v = v.replace(/[^0-9]/g, "").replace(/^00/, ""); }
    if (key === "ct") { v = v.replace(/[^\p{L}]/gu, ""); }
    if (key === "zp") { v = v.replace(/\s/g, ""); }
    return v;
  }
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    return window.crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }
  function hashUserData(data) {
    var out = {};
    var jobs = [];
    Object.keys(data || {}).forEach(function (key) {
      var raw = data[key];
      if (raw === undefined || raw === null || raw === "") { return; }
      var norm = normalize(key, raw);
      if (HEX64.test(norm)) { out[key] = norm; return; }
      jobs.push(sha256hex(norm).then(function (h) { out[key] = h; }));
    });
    return Promise.all(jobs).then(function () { return out; });
  }

  function encodeValue(value) {
    if (value !== null && typeof value === "object") { return JSON.stringify(value); }
    return String(value);
  }
  function send(pixelId, eventName, custom, options) {
    var params = [
      ["id", pixelId], ["ev", eventName], ["dl", window.location.href],
      ["rl", document.referrer], ["if", "false"], ["ts", String(Date.now())],
      ["v", VERSION], ["fbp", ensureFbp()]
    ];
    var fbc = ensureFbc();
    if (fbc) { params.push(["fbc", fbc]); }
    if (options && options.eventID !== undefined && options.eventID !== null) {
      params.push(["eid", String(options.eventID)]);
    }
    Object.keys(custom || {}).forEach(function (k) {
      params.push(["cd[" + k + "]", encodeValue(custom[k])]);
    });
    var ud = pixels[pixelId] || {};
    Object.keys(ud).forEach(function (k) { params.push(["ud[" + k + "]", ud[k]]); });
    var query = params.map(function (p) {
      return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]);
    }).join("&");
    var url = ENDPOINT + "?" + query;
    if (url.length <= MAX_GET_URL || !navigator.sendBeacon) {
      // A GET with the pixel's query string, as Meta's image beacon sends it. fetch
      // rather than new Image(): the document's image cache would swallow a second
      // hit with the same URL (same ms), hiding exactly the double fires we test for.
      if (window.fetch) {
        window.fetch(url, {mode: "no-cors", credentials: "include", keepalive: true,
                           cache: "no-store"}).catch(function () {});
      } else {
        new Image(1, 1).src = url;
      }
    } else {
      navigator.sendBeacon(ENDPOINT, new URLSearchParams(query));
    }
  }

  function handle(args) {
    var command = args[0];
    if (command === "init") {
      var pixelId = String(args[1]);
      if (!(pixelId in pixels)) { pixelOrder.push(pixelId); }
      chain = chain.then(function () { return hashUserData(args[2]); })
        .then(function (ud) { pixels[pixelId] = ud; });
    } else if (command === "track" || command === "trackCustom") {
      chain = chain.then(function () {
        pixelOrder.forEach(function (id) { send(id, args[1], args[2], args[3]); });
      });
    } else if (command === "trackSingle" || command === "trackSingleCustom") {
      chain = chain.then(function () { send(String(args[1]), args[2], args[3], args[4]); });
    }
    // consent, set, dataProcessingOptions: accepted and ignored offline
  }

  fbq.callMethod = function () { handle(arguments); };
  fbq.__pixelcheck = true;
  fbq.loaded = true;
  var queued = fbq.queue || [];
  fbq.queue = [];
  for (var i = 0; i < queued.length; i++) { handle(queued[i]); }
})(window, document);
