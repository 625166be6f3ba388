// A real graphql-ws client (the npm package frontends use) for the live-feed tests: one
// socket, one subscription, and every frame the server sent printed raw, so the Python test
// (tests/gateway/test_subscriptions_js_client.py) asserts on exactly the bytes received.
//
//   node tests/js/subscribe.mjs ws://127.0.0.1:8000/graphql [--events N] [--timeout-ms MS] < request.json
//
// request.json: {"authorization": "Bearer …", "purpose": "…", "query": "subscription …",
// "variables": {…}}. The token comes on stdin, never on the command line (where `ps` shows it).
// `authorization` and `purpose` go in connection_init's payload, as the README's snippet does.
//
// Prints one JSON object per line on stdout:
//   {"kind":"frame","raw":"…"}            every text frame the server sent, as received
//   {"kind":"connected"}                  connection_ack arrived
//   {"kind":"next","payload":{…}}         one event of the subscription
//   {"kind":"error","payload":[…]}        the subscription's own error message
//   {"kind":"closed","code":N,"reason":"…"} the socket closed
//   {"kind":"exit","why":"events"|"timeout"|"closed"|"complete"|"error"}  last line
// Exit code 0 whenever it ran (the Python test decides what the lines mean); 2 on bad usage.

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

function usage(message) {
  process.stderr.write(`${message}\nusage: node subscribe.mjs <ws url> [--events N] ` +
    '[--timeout-ms MS] < {"authorization","purpose","query","variables"}\n');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { url: argv[0], events: 1, timeoutMs: 10000 };
  if (!options.url || !/^wss?:\/\//.test(options.url)) usage('a ws:// or wss:// url is required');
  for (let i = 1; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 0) usage(`${argv[i]} needs a whole number`);
    if (argv[i] === '--events') options.events = value;
    else if (argv[i] === '--timeout-ms') options.timeoutMs = value;
    else usage(`unknown option ${argv[i]}`);
  }
  return options;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    return usage(`stdin is not JSON: ${err.message}`);
  }
}

function emit(line) {
  // Writes to a pipe are synchronous on Linux: nothing is lost when the process exits.
  process.stdout.write(JSON.stringify(line) + '\n');
}

const options = parseArgs(process.argv.slice(2));
const request = await readStdin();
if (typeof request.query !== 'string') usage('stdin needs a "query" string');

let received = 0;
let finished = false;
let client;

function finish(why) {
  if (finished) return;
  finished = true;
  emit({ kind: 'exit', why });
  // dispose() sends a normal close; the process ends when the socket is gone.
  Promise.resolve(client?.dispose()).finally(() => process.exit(0));
}

setTimeout(() => finish('timeout'), options.timeoutMs);

const connectionParams = {};
if (request.authorization !== undefined) connectionParams.authorization = request.authorization;
if (request.purpose !== undefined) connectionParams.purpose = request.purpose;

client = createClient({
  url: options.url,
  webSocketImpl: WebSocket, // Node 20 has no global WebSocket without a flag
  connectionParams,
  lazy: true,
  // A close is an answer the test asserts on (4403 for a bad token): never retry it away.
  retryAttempts: 0,
  on: {
    // ws's socket is an EventEmitter: this listener sees each frame's text exactly as it
    // arrived, beside graphql-ws's own onmessage (which parses it).
    opened: (socket) => socket.on('message', (data, isBinary) => {
      emit({ kind: 'frame', raw: isBinary ? null : data.toString('utf8') });
    }),
    connected: () => emit({ kind: 'connected' }),
    closed: (event) => {
      emit({ kind: 'closed', code: event.code, reason: String(event.reason ?? '') });
      finish('closed');
    },
  },
});

client.subscribe(
  { query: request.query, variables: request.variables ?? {} },
  {
    next: (payload) => {
      emit({ kind: 'next', payload });
      received += 1;
      if (received >= options.events) finish('events');
    },
    error: (err) => {
      // A subscription error arrives as the array of GraphQL errors; a close as the event
      // (already printed by `closed`).
      if (Array.isArray(err)) emit({ kind: 'error', payload: err });
      finish(Array.isArray(err) ? 'error' : 'closed');
    },
    complete: () => finish('complete'),
  },
);
