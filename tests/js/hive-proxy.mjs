// deploy/gateway.config.mjs — the Hive Gateway configuration docker-compose.yml ships —
// run with Hive Gateway's runtime (@graphql-hive/gateway-runtime, what the `hive-gateway`
// CLI serves) on Node's http server, in front of a real Sisada gateway. Started by
// tests/federation/test_hive_proxy.py with cwd=deploy/ (the config names ./schema.graphql).
//
//   PORT=4003 SISADA_UPSTREAM_URL=http://127.0.0.1:8000/graphql node hive-proxy.mjs
import { createServer } from 'node:http';

import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';

import { gatewayConfig } from '../../deploy/gateway.config.mjs';

const gateway = createGatewayRuntime({ ...gatewayConfig, logging: 'error' });
const port = Number(process.env.PORT ?? 4003);
createServer(gateway).listen(port, '127.0.0.1', () => {
  process.stdout.write(`hive proxy ready at http://127.0.0.1:${port}/graphql\n`);
});
process.once('SIGTERM', () => process.exit(0));
