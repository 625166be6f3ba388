// Composes the live Sisada SDL with the partner's SDL using both composition libraries
// partners run — Apollo's (@apollo/composition: Apollo Gateway, Apollo Router via rover)
// and The Guild's (@theguild/federation-composition: Hive, Mesh) — and prints one JSON
// object on stdout for the Python test to assert on:
//
//   {"sisadaSdl": "...", "apollo": {"errors": [...], "hints": [...], "supergraph": bool},
//    "guild": {"errors": [...], "supergraph": bool}}
//
//   SISADA_URL=http://127.0.0.1:8000/graphql SISADA_ROUTER_TOKEN=… \
//   PARTNER_URL=http://127.0.0.1:4001/ node compose.mjs
//
// Exit code 0 whenever the compositions ran, whatever they found; 2 when an SDL could not
// be read.
import { composeServices as composeApollo } from '@apollo/composition';
import { composeServices as composeGuild } from '@theguild/federation-composition';
import { parse } from 'graphql';

import { subgraphs } from './supergraph.mjs';

const describe = (error) => ({ message: error.message, code: error.extensions?.code ?? null });

let services;
try {
  services = (await subgraphs()).map(({ name, url, sdl }) => ({
    name, url, sdl, typeDefs: parse(sdl),
  }));
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}

const apollo = composeApollo(services);
const guild = composeGuild(services);
process.stdout.write(JSON.stringify({
  sisadaSdl: services[0].sdl,
  apollo: {
    errors: (apollo.errors ?? []).map(describe),
    hints: (apollo.hints ?? []).map((hint) => ({
      message: hint.message, code: hint.definition?.code ?? null,
    })),
    supergraph: Boolean(apollo.supergraphSdl),
  },
  guild: {
    errors: (guild.errors ?? []).map(describe),
    supergraph: Boolean(guild.supergraphSdl),
  },
}) + '\n');
