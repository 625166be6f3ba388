// Hive Gateway in front of the Sisada replicas (docker-compose.yml). Proxy mode: one
// upstream, `sisada`, a network alias both replicas share (Docker's DNS answers with
// both: round robin). Only the caller's token and stated purpose travel on, to Sisada
// alone (README, "Compose it into your supergraph": the header-forwarding rule).
//
// tests/federation/test_hive_proxy.py runs this very file with @graphql-hive/gateway-runtime
// in front of a real gateway (no container engine runs where the tests do).
export const gatewayConfig = {
  proxy: { endpoint: process.env.SISADA_UPSTREAM_URL ?? "http://sisada:8000/graphql" },
  // The whole schema (`sisada schema`), not an introspection of Sisada: introspection
  // answers each caller with its own role's contract, and the proxy's anonymous one would
  // be the public's — every officer's query would be refused here as unknown fields.
  schema: "./schema.graphql",
  // The proxy would pass a client's own X-Request-ID on as its request id, and Sisada
  // trusts this proxy's headers (SISADA_TRUSTED_PROXIES): off, so each request's id is
  // Sisada's own and no client can make its requests look like another's.
  requestId: false,
  propagateHeaders: {
    fromClientToSubgraphs: ({ request, context }) => ({
      authorization: request.headers.get("authorization") ?? undefined,
      "sisada-purpose": request.headers.get("sisada-purpose") ?? undefined,
      // The client's address as this edge's socket saw it, replacing whatever the client
      // sent: Sisada's per-IP limits (reports, receipt look-ups) are then per client, not
      // one budget for everyone behind this proxy.
      "x-forwarded-for": context?.req?.socket?.remoteAddress,
    }),
  },
};
