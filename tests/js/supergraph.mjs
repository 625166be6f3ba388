// The supergraph both routers serve: the live Sisada SDL (read from `_service { sdl }`, with
// the router's own service token when introspection is `authenticated`) composed with the
// partner's SDL by @apollo/composition. In production a pipeline (`rover supergraph
// compose`, Hive's registry) does this once and hands the routers a file; here it is done at
// start-up so the tests always compose the schema the gateway is serving now.
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

export async function subgraphSdl(url, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, {
    method: 'POST', headers, body: JSON.stringify({ query: '{ _service { sdl } }' }),
  });
  const body = await response.json();
  if (!body.data?._service?.sdl) {
    throw new Error(`no SDL from ${url}: HTTP ${response.status} ${JSON.stringify(body.errors)}`);
  }
  return body.data._service.sdl;
}

export async function subgraphs(env = process.env) {
  return [
    { name: 'sisada', url: env.SISADA_URL,
      sdl: await subgraphSdl(env.SISADA_URL, env.SISADA_ROUTER_TOKEN) },
    { name: 'police', url: env.PARTNER_URL, sdl: await subgraphSdl(env.PARTNER_URL) },
  ];
}

export async function supergraphSdl(env = process.env) {
  const services = (await subgraphs(env)).map(({ name, url, sdl }) => ({
    name, url, typeDefs: parse(sdl),
  }));
  const result = composeServices(services);
  if (result.errors?.length) {
    throw new Error(`composition failed: ${result.errors.map((e) => e.message).join('; ')}`);
  }
  return result.supergraphSdl;
}

// The client's address as the edge saw it: the socket's peer, never a header the client
// sent (a client could otherwise pick its own address for Sisada's per-IP limits).
export function peerAddress(socket) {
  const address = socket?.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
