// Runs graphql-http's server audits (GraphQL over HTTP compliance) against a live endpoint
// and prints one JSON array on stdout: [{id, name, status, reason?, httpStatus?}, ...].
//
//   node tests/js/audit.mjs http://127.0.0.1:8000/graphql
//
// `status` is graphql-http's own: "ok", or for a failure "error" (a MUST), "warn" (a SHOULD)
// or "notice" (a MAY). Exit code 0 whenever the audits ran, whatever they found: the Python
// test decides what a failure means (tests/gateway/test_graphql_http_audit.py); 2 on bad usage.

import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: node audit.mjs <graphql endpoint url>\n');
  process.exit(2);
}

async function run(audit) {
  const result = await audit.fn();
  const row = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    row.reason = result.reason;
    row.httpStatus = result.response.status;
    // Enough of the body to explain a failure, never the whole of a large one.
    row.body = (await result.response.text()).slice(0, 500);
  }
  return row;
}

const results = [];
// One audit at a time: the server under test is shared with other tests.
for (const audit of serverAudits({ url })) {
  results.push(await run(audit));
}
process.stdout.write(JSON.stringify(results, null, 1) + '\n');
