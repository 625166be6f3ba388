// Apollo Gateway in front of the Sisada gateway and the partner subgraph: the config a
// partner runs (README, "Compose it into your supergraph"), and what the tests start.
//
//   PORT=4000 SISADA_URL=http://127.0.0.1:8000/graphql PARTNER_URL=http://127.0.0.1:4001/ \
//   SISADA_ROUTER_TOKEN=… node apollo-gateway.mjs
//
// - The user's `Authorization` goes to the Sisada subgraph only: it is the user's identity
//   at the immigration office, and no other subgraph has any business holding it.
// - `X-Forwarded-For` carries the client's address as this edge saw it (the socket's peer,
//   never what the client sent), so that Sisada's per-IP limits, trusting this router
//   (SISADA_TRUSTED_PROXIES), see each client rather than the router.
// - Sisada's own refusals keep their codes: a 401, 403 or 429 answer is turned into the
//   error Sisada sent (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, with Retry-After), where
//   RemoteGraphQLDataSource alone would report "429: Too Many Requests" as an
//   INTERNAL_SERVER_ERROR carrying the subgraph's whole response.
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { GraphQLError } from 'graphql';

import { peerAddress, supergraphSdl } from './supergraph.mjs';

const SISADA = 'sisada';

class SisadaDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.clientAddress) {
      request.http.headers.set('x-forwarded-for', context.clientAddress);
    }
    if (this.name === SISADA && context.authorization) {
      request.http.headers.set('authorization', context.authorization);
    }
    // The user's stated purpose (access trail) travels with their token, to Sisada only.
    if (this.name === SISADA && context.purpose) {
      request.http.headers.set('sisada-purpose', context.purpose);
    }
  }

  async errorFromResponse(response) {
    const body = await this.parseBody(response);
    const sent = Array.isArray(body?.errors) ? body.errors[0] : undefined;
    const code = sent?.extensions?.code;
    if (this.name !== SISADA || typeof code !== 'string') {
      return super.errorFromResponse(response);
    }
    const extensions = { code, serviceName: this.name, httpStatus: response.status };
    const retryAfter = response.headers.get('retry-after');
    if (retryAfter) extensions.retryAfter = Number(retryAfter);
    return new GraphQLError(String(sent.message ?? code), { extensions });
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: await supergraphSdl(),
  buildService: ({ name, url }) => Object.assign(new SisadaDataSource({ url }), { name }),
});

const server = new ApolloServer({
  gateway, includeStacktraceInErrorResponses: false, stopOnTerminationSignals: false,
});
const { url } = await startStandaloneServer(server, {
  listen: { host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 4000) },
  context: async ({ req }) => ({
    authorization: req.headers.authorization,
    purpose: req.headers['sisada-purpose'],
    clientAddress: peerAddress(req.socket),
  }),
});
process.stdout.write(`apollo gateway ready at ${url}\n`);

// Stopped by the tests with SIGTERM: exit at once (nothing here holds state to drain).
process.once('SIGTERM', () => process.exit(0));
