'use strict';
/**
 * Sends the example shop's Conversions API events with Meta's official Node SDK
 * (facebook-nodejs-business-sdk), so the tests see exactly what that SDK puts on the wire.
 *
 * Protocol: one JSON job per line on stdin, one JSON reply per line on stdout.
 *   job:   {"id", "graph_url", "api_version", "pixel_id", "access_token",
 *           "test_event_code", "event", "customer", "timeout_ms"}
 *   reply: {"id", "status": HTTP status or null, "body": answer text, "error": null or text}
 * Jobs run concurrently (a slow Graph answer must not hold up the next event), so replies
 * come in the order the jobs finish; each carries its job's id. stdout carries nothing
 * else: diagnostics go to stderr, and the access token is never printed.
 *
 * What is used besides the SDK's classes, and why (the SDK itself is not modified):
 * - FacebookAdsApi.GRAPH / .VERSION: the SDK builds every Graph URL from these static
 *   getters and names the class directly (not `this`), so a subclass would be ignored;
 *   they are redefined on the exported class and answer the current job's base URL and
 *   API version. That is how a plain-HTTP local sink is reached.
 * - axios interceptors on the axios instance the SDK itself requires: read-only except
 *   for the per-job timeout. They keep the raw status and body of the answer, which the
 *   SDK drops (on success it keeps a few fields; on an error it keeps only data.error, and
 *   a non-JSON error body makes it throw a SyntaxError without the status).
 * - Proxy: nothing. axios reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY itself and tunnels
 *   https:// URLs through the proxy with CONNECT; Node adds NODE_EXTRA_CA_CERTS to the
 *   CAs it trusts when it starts.
 */

const { AsyncLocalStorage } = require('node:async_hooks');
const path = require('node:path');
const readline = require('node:readline');
const bizSdk = require('facebook-nodejs-business-sdk');

const { Content, CrashReporter, CustomData, EventRequest, FacebookAdsApi, ServerEvent, UserData } =
  bizSdk;
// the very axios module the SDK loads, even if npm ever nests a copy under the SDK
const sdkDir = path.dirname(require.resolve('facebook-nodejs-business-sdk'));
const axios = require(require.resolve('axios', { paths: [sdkDir] }));

// stdout is the reply channel: the SDK prints debug and crash-reporter notes with console.log
const replyOut = process.stdout;
console.log = console.error.bind(console);
console.info = console.error.bind(console);
console.debug = console.error.bind(console);

// Each job's state travels with its own async calls, so concurrent jobs never mix.
const jobContext = new AsyncLocalStorage();
const defaultGraph = FacebookAdsApi.GRAPH;
const defaultVersion = FacebookAdsApi.VERSION;
Object.defineProperty(FacebookAdsApi, 'GRAPH', {
  configurable: true,
  get: () => (jobContext.getStore() || {}).graphUrl || defaultGraph,
});
Object.defineProperty(FacebookAdsApi, 'VERSION', {
  configurable: true,
  get: () => (jobContext.getStore() || {}).apiVersion || defaultVersion,
});

// Every EventRequest calls FacebookAdsApi.init(), which arms the SDK's crash reporter: on an
// uncaught SDK exception it would post a crash report to Graph. Arm it now and switch it off.
CrashReporter.enable();
CrashReporter.disable();

axios.interceptors.request.use((config) => {
  const job = jobContext.getStore();
  if (job && job.timeoutMs > 0) {
    config.timeout = job.timeoutMs;
  }
  return config;
});
axios.interceptors.response.use(
  (response) => {
    const job = jobContext.getStore();
    if (job) job.answer = response;
    return response;
  },
  (error) => {
    const job = jobContext.getStore();
    if (job && error && error.response) job.answer = error.response;
    // the SDK's own message for this case is only "no response was received"
    else if (job && error) job.transportError = error.code || error.message;
    return Promise.reject(error);
  },
);

// user_data keys the SDK hashes itself, with the plural setter that takes the event's list
const HASHED_KEYS = {
  em: 'setEmails',
  ph: 'setPhones',
  fn: 'setFirstNames',
  ln: 'setLastNames',
  ct: 'setCities',
  st: 'setStates',
  zp: 'setZips',
  country: 'setCountries',
  ge: 'setGenders',
  db: 'setDatesOfBirth',
  external_id: 'setExternalIds',
};

// raw checkout values: the SDK normalizes and SHA-256-hashes them (external_id it sends as is)
const CUSTOMER_SETTERS = {
  email: 'setEmail',
  phone: 'setPhone',
  first_name: 'setFirstName',
  last_name: 'setLastName',
  city: 'setCity',
  state: 'setState',
  zip: 'setZip',
  country: 'setCountry',
  external_id: 'setExternalId',
};

const CUSTOM_DATA_SETTERS = {
  value: 'setValue',
  currency: 'setCurrency',
  content_ids: 'setContentIds',
  content_type: 'setContentType',
  content_name: 'setContentName',
  content_category: 'setContentCategory',
  num_items: 'setNumItems',
  order_id: 'setOrderId',
  predicted_ltv: 'setPredictedLtv',
  search_string: 'setSearchString',
  status: 'setStatus',
};

function asList(value) {
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

function buildUserData(eventUserData, customer) {
  const userData = new UserData();
  if (eventUserData.client_ip_address) userData.setClientIpAddress(eventUserData.client_ip_address);
  if (eventUserData.client_user_agent) userData.setClientUserAgent(eventUserData.client_user_agent);
  if (eventUserData.fbp) userData.setFbp(eventUserData.fbp);
  if (eventUserData.fbc) userData.setFbc(eventUserData.fbc);
  if (customer) {
    for (const [field, setter] of Object.entries(CUSTOMER_SETTERS)) {
      if (customer[field]) userData[setter](String(customer[field]));
    }
  } else {
    // already hashed upstream: the SDK passes 64-hex values through unchanged
    for (const [key, setter] of Object.entries(HASHED_KEYS)) {
      if (eventUserData[key] != null) userData[setter](asList(eventUserData[key]));
    }
  }
  return userData;
}

function buildCustomData(raw) {
  const customData = new CustomData();
  const extra = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value == null) continue;
    if (key === 'contents') {
      customData.setContents(
        value.map((item) => {
          const content = new Content().setId(String(item.id));
          if (item.quantity != null) content.setQuantity(item.quantity);
          if (item.item_price != null) content.setItemPrice(item.item_price);
          return content;
        }),
      );
    } else if (CUSTOM_DATA_SETTERS[key]) {
      customData[CUSTOM_DATA_SETTERS[key]](value);
    } else {
      extra[key] = value;
    }
  }
  if (Object.keys(extra).length > 0) customData.setCustomProperties(extra);
  return customData;
}

function buildServerEvent(event, customer) {
  const serverEvent = new ServerEvent()
    .setEventName(event.event_name)
    .setEventTime(event.event_time)
    .setActionSource(event.action_source || 'website')
    .setUserData(buildUserData(event.user_data || {}, customer));
  if (event.event_id != null) serverEvent.setEventId(event.event_id);
  if (event.event_source_url) serverEvent.setEventSourceUrl(event.event_source_url);
  if (event.custom_data) serverEvent.setCustomData(buildCustomData(event.custom_data));
  return serverEvent;
}

function answerText(answer) {
  if (answer.data == null) return '';
  return typeof answer.data === 'string' ? answer.data : JSON.stringify(answer.data);
}

// tokens this short are test stand-ins; replacing them would garble every message
const MIN_REDACTED_TOKEN = 6;

function redact(text, token) {
  const secret = token ? String(token) : '';
  return secret.length >= MIN_REDACTED_TOKEN ? String(text).split(secret).join('REDACTED') : String(text);
}

async function send(job) {
  const state = {
    graphUrl: String(job.graph_url).replace(/\/+$/, ''),
    apiVersion: String(job.api_version).replace(/^\/+|\/+$/g, ''),
    timeoutMs: Number(job.timeout_ms) || 0,
    answer: null,
    transportError: null,
  };
  try {
    await jobContext.run(state, () => {
      const request = new EventRequest(job.access_token, String(job.pixel_id)).setEvents([
        buildServerEvent(job.event, job.customer),
      ]);
      if (job.test_event_code) request.setTestEventCode(job.test_event_code);
      return request.execute();
    });
    return { status: state.answer.status, body: answerText(state.answer), error: null };
  } catch (err) {
    const cause = state.transportError ? ` (${state.transportError})` : '';
    const message = redact(`${(err && err.message) || err}${cause}`, job.access_token);
    if (state.answer) {
      return { status: state.answer.status, body: answerText(state.answer), error: message };
    }
    // no answer: a connection error, a timeout, or the SDK refused to build the event
    const status = err && typeof err.status === 'number' ? err.status : null;
    return { status, body: '', error: message };
  }
}

function reply(payload) {
  replyOut.write(JSON.stringify(payload) + '\n');
}

let inFlight = 0;
let inputClosed = false;

function finishIfIdle() {
  if (inputClosed && inFlight === 0) process.exit(0);
}

async function handleLine(line) {
  if (!line.trim()) return;
  let job;
  try {
    job = JSON.parse(line);
  } catch (err) {
    console.error(`sender: unreadable job line: ${err.message}`);
    return;
  }
  inFlight += 1;
  try {
    const outcome = await send(job);
    if (outcome.error) console.error(`sender: job ${job.id}: ${outcome.error}`);
    reply({ id: job.id, ...outcome });
  } catch (err) {
    reply({ id: job.id, status: null, body: '', error: redact(err.message, job.access_token) });
  } finally {
    inFlight -= 1;
    finishIfIdle();
  }
}

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  handleLine(line);
});
input.on('close', () => {
  inputClosed = true;
  finishIfIdle();
});
