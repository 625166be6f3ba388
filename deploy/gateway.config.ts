// Hive Gateway in front of the Sisada replicas (docker-compose.yml). Proxy mode: one
// upstream, `sisada`, a network alias both replicas share (Docker's DNS answers with
// both: round robin). Only the caller's token and stated purpose travel on, to Sisada
// alone (README, "Compose it into your supergraph": the header-forwarding rule).
// Not run in this repository (no container engine here); tests/js/hive-gateway.mjs runs
// the same rule with @graphql-hive/gateway-runtime against a real gateway.
import { defineConfig } from "@graphql-hive/gateway";

export const gatewayConfig = defineConfig({
  proxy: { endpoint: "http://sisada:8000/graphql" },
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({
      authorization: request.headers.get("authorization") ?? undefined,
      "sisada-purpose": request.headers.get("sisada-purpose") ?? undefined,
    }),
  },
});
