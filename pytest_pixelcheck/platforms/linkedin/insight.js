/* pytest-pixelcheck offline stand-in for
 * https://snap.licdn.com/li.lms-analytics/insight.min.js
 *
 * The proxy serves this file instead of LinkedIn's Insight Tag so a test run never
 * depends on (or talks to) LinkedIn. It implements what LinkedIn's base code and
 * public API use, and sends each hit the way LinkedIn's own library was seen
 * sending it (PLATFORMS.md 2b):
 *
 *  - partner ids from window._linkedin_partner_id, window._linkedin_data_partner_id
 *    (older snippets) and window._linkedin_data_partner_ids (an array);
 *  - window.lintrk('track', {conversion_id: 123, event_id: 'X'}): an image GET
 *    https://px.ads.linkedin.com/collect?v=2&fmt=js&pid=<partner>&conversionId=123
 *    &eventId=X&time=<ms>&url=<page>  (eventId left out when no event_id was given);
 *  - page visits (on load, unless window._wait_for_lintrk, and lintrk('track')
 *    without a conversion_id): a POST to /wa/, base64 of gzip of JSON to
 *    https://px.ads.linkedin.com/wa/?medium=fetch&fmt=g where the browser has
 *    CompressionStream, plain JSON to https://px.ads.linkedin.com/wa/ otherwise.
 *    Page visits are not conversions;
 *  - window.lintrk('setUserData', {email}): the email is trimmed, lower-cased and
 *    SHA-256 hashed in the browser, kept in localStorage "li_hem" and sent as `hem`
 *    in the /wa/ signals that follow (never in a collect hit);
 *  - a `li_fat_id` landing-page parameter (a LinkedIn ad click) is kept in a
 *    first-party `li_fat_id` cookie for 90 days and sent as `liFatId` in /wa/.
 *
 * Queued setUserData calls are applied before the automatic page visit, so a page
 * that identifies its visitor has `hem` in that page's visit (the real order is
 * unconfirmed); the other queued calls then run in the order the page made them.
 */
(function (window, document) {
  "use strict";
  if (window._already_called_lintrk) { return; }
  window._already_called_lintrk = true;

  var COLLECT = "https://px.ads.linkedin.com/collect";
  var WA = "https://px.ads.linkedin.com/wa/";
  var SCRIPT_VERSION = 308;  // the build number a recorded /wa/ body carried
  var chain = Promise.resolve();  // keeps hits in call order despite async hashing

  function partnerIds() {
    var ids = [];
    function add(value) {
      if (value === undefined || value === null || value === "") { return; }
      var text = String(value);
      if (ids.indexOf(text) === -1) { ids.push(text); }
    }
    add(window._linkedin_partner_id);
    add(window._linkedin_data_partner_id);
    (window._linkedin_data_partner_ids || []).forEach(add);
    return ids;
  }

  // --- cookies and storage ---------------------------------------------------------
  function getCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function clickId() {
    var match = /[?&]li_fat_id=([^&#]*)/.exec(window.location.search);
    if (match && match[1]) {
      // the click id travels unchanged: the server must send the same bytes
      document.cookie = "li_fat_id=" + encodeURIComponent(decodeURIComponent(match[1])) +
        "; path=/; max-age=" + (90 * 86400) + "; SameSite=Lax";
    }
    return getCookie("li_fat_id");
  }
  function storedHem() {
    try { return window.localStorage.getItem("li_hem"); } catch (e) { return null; }
  }
  function storeHem(hem) {
    try { window.localStorage.setItem("li_hem", hem); } catch (e) { /* private mode */ }
  }

  // --- hashing ---------------------------------------------------------------------
  var HEX64 = /^[0-9a-fA-F]{64}$/;
  function sha256hex(text) {
    var bytes = new TextEncoder().encode(text);
    return window.crypto.subtle.digest("SHA-256", bytes).then(function (buf) {
      return Array.prototype.map.call(new Uint8Array(buf), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }
  function setUserData(data) {
    var email = data && data.email;
    if (email === undefined || email === null || String(email).trim() === "") {
      return Promise.resolve();
    }
    var clean = String(email).trim();
    if (HEX64.test(clean)) { storeHem(clean.toLowerCase()); return Promise.resolve(); }
    return sha256hex(clean.toLowerCase()).then(storeHem);
  }

  // --- the hits --------------------------------------------------------------------
  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0;
      return (c === "x" ? r : (r & 3 | 8)).toString(16);
    });
  }
  function sendConversion(conversionId, eventId, callback) {
    var pids = partnerIds();
    if (!pids.length) { return; }
    var url = COLLECT + "?v=2&fmt=js&pid=" + encodeURIComponent(pids.join(",")) +
      "&conversionId=" + encodeURIComponent(String(conversionId)) +
      (eventId !== undefined && eventId !== null && eventId !== ""
        ? "&eventId=" + encodeURIComponent(String(eventId)) : "") +
      "&time=" + Date.now() + "&url=" + encodeURIComponent(window.location.href);
    var img = new Image(1, 1);
    img.onload = img.onerror = function () {
      if (typeof callback === "function") { callback(); }
    };
    img.src = url;
  }
  function base64(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      out += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return window.btoa(out);
  }
  function gzipBase64(text) {
    var stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (buf) {
      return base64(new Uint8Array(buf));
    });
  }
  function sendSignal(signalType) {
    var pids = partnerIds();
    if (!pids.length) { return Promise.resolve(); }
    // only the fields a decoder of recorded /wa/ bodies names (FACTS.md)
    var body = {
      pids: pids.map(function (p) { return /^\d+$/.test(p) ? Number(p) : p; }),
      scriptVersion: SCRIPT_VERSION,
      time: Date.now(),
      url: window.location.href,
      pageTitle: document.title,
      websiteSignalRequestId: uuid(),
      liFatId: clickId() || "",
      liGiant: "",
      hem: storedHem() || null,
      signalType: signalType
    };
    var text = JSON.stringify(body);
    // The chain waits until the POST is issued, not until it is answered: hits leave
    // in call order, and a conversion tracked after a page visit does not wait a
    // round trip (a page left within that round trip would lose its conversion hit).
    function post(url, payload) {
      window.fetch(url, {method: "POST", body: payload, keepalive: true, mode: "no-cors",
                         credentials: "include"}).catch(function () {});
    }
    if (typeof CompressionStream === "function") {
      return gzipBase64(text).then(function (packed) {
        post(WA + "?medium=fetch&fmt=g", packed);
      });
    }
    post(WA, text);
    return Promise.resolve();
  }

  // --- commands --------------------------------------------------------------------
  function handle(method, options) {
    if (method === "setUserData") {
      chain = chain.then(function () { return setUserData(options); });
    } else if (method === "track") {
      var conversion = options && options.conversion_id;
      if (conversion === undefined || conversion === null || conversion === "") {
        chain = chain.then(function () { return sendSignal("PAGE_VISIT"); });
      } else {
        chain = chain.then(function () {
          sendConversion(conversion, options.event_id, options.commandCallback);
        });
      }
    }
    // other commands: accepted, ignored offline
  }

  var queued = (window.lintrk && window.lintrk.q) ? window.lintrk.q.slice() : [];
  clickId();
  // identify first, so this page's visit carries the visitor's hashed email
  queued.forEach(function (call) {
    if (call[0] === "setUserData") { handle(call[0], call[1]); }
  });
  if (window._wait_for_lintrk !== true) {
    chain = chain.then(function () { return sendSignal("PAGE_VISIT"); });
  }
  queued.forEach(function (call) {
    if (call[0] !== "setUserData") { handle(call[0], call[1]); }
  });

  // From now on calls run at once instead of queueing.
  var live = function (method, options) { handle(method, options); };
  live.q = [];
  window.lintrk = live;
})(window, document);
