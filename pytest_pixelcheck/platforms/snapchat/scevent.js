/* pytest-pixelcheck offline stand-in for https://sc-static.net/scevent.min.js
 *
 * The proxy serves this file instead of Snap's library so a test run never depends
 * on (or talks to) Snapchat. It implements what Snap's published base code queues
 * (snaptr('init', PIXEL_ID, {...}) and snaptr('track', EVENT, {...})) and sends what
 * Snap's own library (3.53.x) was seen sending:
 *
 *  - conversion hits: a sendBeacon POST to https://tr.snapchat.com/p whose text/plain
 *    body is JSON {"ctx": {...}, "req": [{"t": {...}}, ...]}; events queued together
 *    share one request, one req[i] each. In req[i].t: the event name at `ev`
 *    (PURCHASE), the pixel at `pid`, the dedup id at `cdid`, the transaction id at
 *    `e_tid`, price/currency at `e_pr`/`e_cur`, the hashed email and phone at
 *    `u_hem`/`u_hpn`, cookie1 at `u_c1`, the time in ms at `ts`. The page URL and the
 *    library version sit in ctx (`pl`, `rf`, `v`).
 *  - no client_dedup_id: cdid is "@-" + a random UUID, as the real library fills it.
 *  - per pixel, once: an init POST to https://tr6.snapchat.com/p, a GET of
 *    https://tr.snapchat.com/config/1/<pid>.json and the cookie-match iframe
 *    https://tr.snapchat.com/cm/i?pid=<pid>. None of them is a conversion.
 *
 * init's user_email / user_phone_number are normalized and SHA-256 hashed here, in
 * the browser (email trimmed + lowercased; phone digits only, no '+', no leading 0);
 * user_hashed_email / user_hashed_phone_number pass through.
 *
 * Identity: the first-party `_scid` cookie is a random UUID (13 months). The real
 * library's u_c1 is not the `_scid` value; how it derives u_c1 is unknown, so this
 * stand-in derives a stable UUID from `_scid` (its own choice) to keep the two
 * different, as observed. A `ScCid` landing-page parameter (the ad click id) is kept
 * in a first-party `_scclid` cookie so a backend can send it on later pages.
 */
(function (window, document) {
  "use strict";
  var snaptr = window.snaptr;
  if (!snaptr || snaptr.__pixelcheck) { return; }
  var HIT = "https://tr.snapchat.com/p";
  var INIT = "https://tr6.snapchat.com/p";
  var CONFIG = "https://tr.snapchat.com/config/1/";
  var COOKIE_MATCH = "https://tr.snapchat.com/cm/i?pid=";
  var VERSION = "3.53.0-pixelcheck";
  // track() parameter -> wire key of req[i].t
  var PARAMS = {price: "e_pr", currency: "e_cur", transaction_id: "e_tid",
                item_ids: "e_iids", item_category: "e_ic", number_items: "e_ni",
                description: "e_desc", search_string: "e_ss", sign_up_method: "e_sm",
                success: "e_su", level: "e_lvl"};

  var pixels = [];           // pixel ids in init order
  var userByPixel = {};      // pixel id -> {u_hem, u_hpn}
  var pending = [];          // req[] entries waiting for the next flush
  var flushTimer = null;
  var chain = Promise.resolve();  // keeps calls in order despite async hashing

  // --- cookies and ids -------------------------------------------------------------
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
  function uuid4() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function ensureScid() {
    var scid = getCookie("_scid");
    if (!scid) {
      scid = uuid4();
      setCookie("_scid", scid, 34128000);  // 395 days: the pixel cookie's 13 months
    }
    return scid;
  }
  function ensureClickId() {
    var match = /[?&]ScCid=([^&#]*)/.exec(window.location.search);
    if (match && match[1]) {
      // case-sensitive and never altered: the server must send the same bytes
      setCookie("_scclid", decodeURIComponent(match[1]), 30 * 86400);
    }
    return getCookie("_scclid");
  }
  var cookie1 = null;  // u_c1, derived once per page from _scid
  function deriveCookie1() {
    return sha256hex("u_c1:" + ensureScid()).then(function (h) {
      cookie1 = h.slice(0, 8) + "-" + h.slice(8, 12) + "-4" + h.slice(13, 16) + "-a" +
        h.slice(17, 20) + "-" + h.slice(20, 32);
    });
  }

  // --- hashing in the browser --------------------------------------------------------
  var HEX64 = /^[0-9a-fA-F]{64}$/;
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    return window.crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }
  function normEmail(v) { return String(v).trim().toLowerCase(); }
  function normPhone(v) { return String(v).replace(/[^0-9]/g, "").replace(/^0+/, ""); }
  function hashUser(options) {
    var out = {};
    var jobs = [];
    function one(wire, plain, hashed, norm) {
      var given = options ? options[hashed] : undefined;
      if (given && HEX64.test(String(given).trim())) {
        out[wire] = String(given).trim().toLowerCase();
        return;
      }
      var raw = options ? options[plain] : undefined;
      if (raw === undefined || raw === null || raw === "") { return; }
      var normalized = norm(raw);
      if (!normalized) { return; }
      jobs.push(sha256hex(normalized).then(function (h) { out[wire] = h; }));
    }
    one("u_hem", "user_email", "user_hashed_email", normEmail);
    one("u_hpn", "user_phone_number", "user_hashed_phone_number", normPhone);
    return Promise.all(jobs).then(function () { return out; });
  }

  // --- sending -----------------------------------------------------------------------
  function context() {
    return {v: VERSION, pl: window.location.href, rf: document.referrer,
            "if": window.top !== window, bt: "__LIVE__",
            sw: window.screen ? window.screen.width : 0,
            sh: window.screen ? window.screen.height : 0};
  }
  function beacon(url, body) {
    var text = JSON.stringify(body);
    // sendBeacon with a string body: Content-Type text/plain;charset=UTF-8, as seen
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, text)) && window.fetch) {
      window.fetch(url, {method: "POST", body: text, keepalive: true, mode: "no-cors",
                         credentials: "include"}).catch(function () {});
    }
  }
  function flush() {
    flushTimer = null;
    if (!pending.length) { return; }
    var req = pending;
    pending = [];
    beacon(HIT, {ctx: context(), req: req});
  }
  function queue(entry) {
    pending.push(entry);
    // events queued in one go (the base code's replay, one page's calls) share a request
    if (flushTimer === null) { flushTimer = window.setTimeout(flush, 0); }
  }
  window.addEventListener("pagehide", flush);

  function initPixel(pid, options) {
    pid = String(pid);
    var first = pixels.indexOf(pid) === -1;
    if (first) { pixels.push(pid); }
    return hashUser(options || {}).then(function (user) {
      var known = userByPixel[pid] || {};
      Object.keys(user).forEach(function (k) { known[k] = user[k]; });
      userByPixel[pid] = known;
      if (!first) { return; }
      beacon(INIT, {ctx: context(), req: [{t: {pid: pid, ts: Date.now(), u_c1: cookie1}}]});
      if (window.fetch) {
        window.fetch(CONFIG + encodeURIComponent(pid) + ".json", {mode: "cors",
          credentials: "omit"}).catch(function () {});
      }
      var frame = document.createElement("iframe");
      frame.style.display = "none";
      frame.src = COOKIE_MATCH + encodeURIComponent(pid);
      (document.body || document.documentElement).appendChild(frame);
    });
  }

  function trackEvent(pid, name, params) {
    params = params || {};
    var t = {pid: pid, ev: String(name), ts: Date.now(), u_c1: cookie1};
    var dedup = params.client_dedup_id;
    t.cdid = dedup !== undefined && dedup !== null && dedup !== "" ? String(dedup)
      : "@-" + uuid4();
    Object.keys(PARAMS).forEach(function (key) {
      var value = params[key];
      if (value === undefined || value === null || value === "") { return; }
      t[PARAMS[key]] = Array.isArray(value) ? value.map(String).join(",") : String(value);
    });
    var user = userByPixel[pid] || {};
    Object.keys(user).forEach(function (k) { t[k] = user[k]; });
    queue({t: t});
  }

  function handle(args) {
    var method = args[0];
    if (method === "init") {
      var pid = args[1];
      var options = args[2];
      chain = chain.then(function () { return initPixel(pid, options); });
    } else if (method === "track") {
      var name = args[1];
      var params = args[2];
      chain = chain.then(function () {
        pixels.forEach(function (p) { trackEvent(p, name, params); });
      });
    }
    // other calls (e.g. a consent toggle) are accepted and ignored offline
  }

  ensureClickId();
  chain = deriveCookie1();
  // Replay what the base code queued, then take calls directly.
  var queued = Array.prototype.slice.call(snaptr.queue || [], 0);
  if (snaptr.queue) { snaptr.queue.length = 0; }
  queued.forEach(function (call) { handle(Array.prototype.slice.call(call, 0)); });
  snaptr.handleRequest = function () { handle(Array.prototype.slice.call(arguments, 0)); };
  snaptr.__pixelcheck = {version: VERSION};
})(window, document);
