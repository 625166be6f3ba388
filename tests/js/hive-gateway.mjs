// Hive Gateway (its runtime, @graphql-hive/gateway-runtime, on Node's http server) in front
// of the Sisada gateway and the partner subgraph: the config a partner runs (README,
// "Compose it into your supergraph"; the same options go into the `hive-gateway` CLI's
// gateway.config.mjs), and what the tests start.
//
//   PORT=4002 SISADA_URL=http://127.0.0.1:8000/graphql PARTNER_URL=http://127.0.0.1:4001/ \
//   SISADA_ROUTER_TOKEN=… node hive-gateway.mjs
//
// - The user's `Authorization` goes to the Sisada subgraph only.
// - `X-Forwarded-For` carries the client's address as this edge saw it (the socket's peer,
//   replacing whatever the client sent), for Sisada's per-IP limits (SISADA_TRUSTED_PROXIES).
import { createServer } from 'node:http';

import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';

import { peerAddress, supergraphSdl } from './supergraph.mjs';

const SISADA = 'sisada';
// The header this edge writes itself; a client's own is dropped before anything reads it.
const CLIENT_ADDRESS = 'x-forwarded-for';

const supergraph = await supergraphSdl();
const gateway = createGatewayRuntime({
  supergraph,
  logging: process.env.HIVE_LOG_LEVEL ?? 'error',
  // A supergraph's clients see what the subgraphs answered, not the gateway's hints.
  maskedErrors: false,
  // A client's own X-Request-ID would travel on as the request id Sisada records.
  requestId: false,
  propagateHeaders: {
    fromClientToSubgraphs({ request, subgraphName }) {
      const headers = { [CLIENT_ADDRESS]: request.headers.get(CLIENT_ADDRESS) };
      if (subgraphName === SISADA) {
        headers.authorization = request.headers.get('authorization');
        // The user's stated purpose (access trail) travels with their token, to Sisada only.
        const purpose = request.headers.get('sisada-purpose');
        if (purpose) headers['sisada-purpose'] = purpose;
      }
      return headers;
    },
  },
});

const server = createServer((req, res) => {
  req.headers[CLIENT_ADDRESS] = peerAddress(req.socket);
  return gateway(req, res);
});
const port = Number(process.env.PORT ?? 4002);
server.listen(port, process.env.HOST ?? '127.0.0.1', () => {
  process.stdout.write(`hive gateway ready at http://127.0.0.1:${port}/graphql\n`);
});

// Stopped by the tests with SIGTERM: exit at once (nothing here holds state to drain).
process.once('SIGTERM', () => process.exit(0));
