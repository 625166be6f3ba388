// A partner agency's own subgraph (police), Federation v2.3, for the supergraph tests.
// It defines its own `Query.me`, `Me` and `PageInfo` — the names a partner naturally uses,
// which Sisada leaves free (`sisadaMe`, `SisadaPageInfo`) — and refers to Sisada's
// `Foreigner` by its key only: the police record incidents about foreigners by id and
// never hold what Sisada knows about them.
//
//   PORT=4001 FOREIGNER_IDS=12,34,999999 node partner-subgraph.mjs
//
// One incident per id in FOREIGNER_IDS, in order (ids of the tests' choosing: one in the
// police persona's jurisdiction, one outside it, one that does not exist).
import { appendFileSync } from 'node:fs';

import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3",
                      import: ["@key", "@shareable"])

  type Query {
    me: Me
    incidents: [Incident!]!
    incidentPage(first: Int = 10): IncidentConnection!
  }

  type Me { badge: String! unit: String! }

  type PageInfo { hasNextPage: Boolean! endCursor: String }

  type IncidentConnection { nodes: [Incident!]! pageInfo: PageInfo! }

  type Incident { id: ID! summary: String foreigner: Foreigner }

  type Foreigner @key(fields: "id", resolvable: false) { id: ID! }
`);

const ids = (process.env.FOREIGNER_IDS ?? '').split(',').filter(Boolean);
const incidents = ids.map((id, i) => ({
  id: `INC-${i + 1}`, summary: `incident ${i + 1}`, foreigner: { id },
}));

const resolvers = {
  Query: {
    me: () => ({ badge: 'POL-0001', unit: 'Polsek Setiabudi' }),
    incidents: () => incidents,
    incidentPage: (_root, { first }) => ({
      nodes: incidents.slice(0, first),
      pageInfo: { hasNextPage: incidents.length > first, endCursor: null },
    }),
  },
};

// REQUEST_LOG: a file that gets one JSON line per request, saying whether it carried an
// Authorization header and which client address it names — the tests prove that routers
// forward the user's token to Sisada only.
const requestLog = process.env.REQUEST_LOG;
const recordRequests = {
  async requestDidStart({ request }) {
    if (requestLog) {
      appendFileSync(requestLog, JSON.stringify({
        authorization: request.http?.headers.has('authorization') ?? false,
        forwardedFor: request.http?.headers.get('x-forwarded-for') ?? null,
      }) + '\n');
    }
  },
};

const server = new ApolloServer({
  schema: buildSubgraphSchema({ typeDefs, resolvers }),
  plugins: [ApolloServerPluginInlineTraceDisabled(), recordRequests],
  stopOnTerminationSignals: false,
});
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.PORT ?? 4001) },
});
process.stdout.write(`partner subgraph ready at ${url}\n`);

// Stopped by the tests with SIGTERM: exit at once (nothing here holds state to drain).
process.once('SIGTERM', () => process.exit(0));
