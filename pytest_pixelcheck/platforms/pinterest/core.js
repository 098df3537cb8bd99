/* pytest-pixelcheck offline stand-in for https://s.pinimg.com/ct/core.js (the Pinterest Tag)
 *
 * The proxy serves this file instead of Pinterest's library, so a test run never depends
 * on (or talks to) Pinterest. It implements what Pinterest's base code queues
 * (pintrk('load', TAG, {em}), pintrk('set', {em}), pintrk('page'),
 * pintrk('track', NAME, {event_id, value, ...})) and sends each hit the way Pinterest's
 * own library was seen sending it (PLATFORMS.md 2b):
 *
 *   1. GET https://ct.pinterest.com/user/?event=NAME&ed=<JSON>&tid=TAG&pd=<JSON>&ad=<JSON>&cb=<ms>
 *      read as JSON (fetch, with credentials);
 *   2. only when that answer is JSON: the same parameters as an image GET to
 *      https://ct.pinterest.com/v3/ (a non-JSON answer leaves the /user/ hit alone).
 *
 * The event name goes out exactly as the page wrote it; pintrk('page') goes out as
 * event=init. The page's event data (event_id included) is the JSON of `ed`; the email
 * given to load/set is trimmed, lowercased and SHA-256 hashed in the browser and sent
 * as pd={"em": <hex>}; `ad` carries the page (loc, ref, if, sh, sw) and `cb` the time
 * in ms. An `epik` landing-page parameter (Pinterest's click id) is kept in the
 * first-party `_epik` cookie and sent as the `epik` parameter of every hit (the real
 * library's key for it is not known: FACTS.md).
 */
(function (window, document) {
  "use strict";
  var pintrk = window.pintrk;
  if (!pintrk || pintrk.__pixelcheck) { return; }
  var HOST = "https://ct.pinterest.com";
  var VERSION = "pixelcheck-stand-in-1.0";
  var HEX64 = /^[0-9a-fA-F]{64}$/;

  var tags = [];          // tag ids in load order
  var emByTag = {};       // tag id -> SHA-256 hex of the email given to load/set
  var chain = Promise.resolve();  // hits start in call order despite async hashing

  // --- cookies ---------------------------------------------------------------------
  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function ensureEpik() {
    var match = /[?&]epik=([^&#]*)/.exec(window.location.search);
    if (match) {
      // the click id is case-sensitive and never altered: the server sends these bytes
      document.cookie = "_epik=" + encodeURIComponent(decodeURIComponent(match[1])) +
        "; path=/; max-age=" + (365 * 86400) + "; SameSite=Lax";
    }
    return getCookie("_epik");
  }

  // --- enhanced match: trim, lowercase, SHA-256 in the browser ------------------------
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    return window.crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }
  function hashEmail(raw) {
    if (raw === undefined || raw === null) { return Promise.resolve(null); }
    var text = String(raw).trim();
    if (!text) { return Promise.resolve(null); }
    if (HEX64.test(text)) { return Promise.resolve(text.toLowerCase()); }
    return sha256hex(text.toLowerCase()).catch(function () { return null; });
  }
  function remember(targets, options) {
    if (!options || options.em === undefined) { return Promise.resolve(); }
    return hashEmail(options.em).then(function (hex) {
      targets.forEach(function (tag) {
        if (hex) { emByTag[tag] = hex; } else { delete emByTag[tag]; }
      });
    });
  }

  // --- the hit ---------------------------------------------------------------------
  function query(tag, eventName, data) {
    var params = [["event", String(eventName)]];
    if (data && typeof data === "object" && Object.keys(data).length) {
      params.push(["ed", JSON.stringify(data)]);
    }
    params.push(["tid", tag]);
    if (emByTag[tag]) { params.push(["pd", JSON.stringify({em: emByTag[tag]})]); }
    params.push(["ad", JSON.stringify({
      loc: window.location.href, ref: document.referrer, "if": window.top !== window,
      sh: window.screen ? window.screen.height : 0, sw: window.screen ? window.screen.width : 0
    })]);
    var epik = ensureEpik();
    if (epik) { params.push(["epik", epik]); }
    params.push(["cb", String(Date.now())]);
    return params.map(function (p) {
      return encodeURIComponent(p[0]) + "=" + encodeURIComponent(p[1]);
    }).join("&");
  }
  function image(url) {
    return new Promise(function (resolve) {
      var img = new Image();
      var done = function () { resolve(); };
      img.onload = done;
      img.onerror = done;
      window.setTimeout(done, 2000);  // never hold the next hit on a lost beacon
      img.src = url;
    });
  }
  function send(tag, eventName, data) {
    var qs = query(tag, eventName, data);
    // keepalive: a hit fired just before the shopper navigates away still leaves (the
    // /v3/ copy then may not, and the /user/ hit alone is the event)
    return window.fetch(HOST + "/user/?" + qs,
                        {credentials: "include", mode: "cors", keepalive: true})
      .then(function (answer) { return answer.json(); })
      .then(function () { return image(HOST + "/v3/?" + qs); })
      .catch(function () { /* not JSON (or no answer): the /user/ hit stays alone */ });
  }

  // --- commands --------------------------------------------------------------------
  function addTag(tag) {
    tag = String(tag);
    if (tags.indexOf(tag) === -1) { tags.push(tag); }
    return tag;
  }
  function handle(args) {
    var method = args[0];
    if (method === "load") {
      var tag = addTag(args[1]);
      var options = args[2];
      chain = chain.then(function () { return remember([tag], options); });
    } else if (method === "set") {
      var setOptions = args[1];
      chain = chain.then(function () { return remember(tags.slice(), setOptions); });
    } else if (method === "page") {
      var pageData = args[1];
      // the chain orders the hits' start (after any hashing queued before them); the
      // hits themselves run side by side, so none waits on another's answer
      chain = chain.then(function () {
        tags.forEach(function (t) { send(t, "init", pageData); });
      });
    } else if (method === "track") {
      var name = args[1];
      var data = args[2];
      var callback = args[3];
      chain = chain.then(function () {
        var sent = Promise.all(tags.map(function (t) { return send(t, name, data); }));
        if (typeof callback === "function") {
          sent.then(function () { callback(true); });
        }
      });
    }
    // anything else (debug, ...): accepted, ignored offline
  }

  ensureEpik();
  var queued = Array.prototype.slice.call(pintrk.queue || [], 0);
  var runtime = function () { handle(Array.prototype.slice.call(arguments, 0)); };
  // code that pushes onto pintrk.queue after the library loaded still gets served
  runtime.queue = {push: function (args) { handle(Array.prototype.slice.call(args, 0)); }};
  runtime.version = pintrk.version || "3.0";
  runtime.__pixelcheck = {version: VERSION};
  window.pintrk = runtime;
  queued.forEach(function (args) { handle(Array.prototype.slice.call(args, 0)); });
})(window, document);
