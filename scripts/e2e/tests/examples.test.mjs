// The @polkadot/api examples in ../examples, run as a user runs them against a dev node:
// register a provider, create a deal through the runtime API's ranked offers, read its bill.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { PodchainNode } from '../lib/node.mjs';
import { submitFinalized } from '../lib/chain.mjs';

const PEER_ID = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const examples = fileURLToPath(new URL('../examples/', import.meta.url));

let node, api;

before(async () => {
  node = new PodchainNode({ name: 'e2e-examples', args: ['--dev'] });
  await node.start();
  api = await ApiPromise.create({ provider: new WsProvider(node.wsUrl), noInitWarn: true });
});

after(async () => {
  await api?.disconnect();
  await node?.stop();
});

/** Runs an example with `env`; its JSON output. */
async function example (name, env) {
  const { stdout } = await promisify(execFile)('node', [`${examples}${name}`], {
    env: { ...process.env, PODCHAIN_RPC: node.wsUrl, ...env },
    timeout: 120_000
  });
  return JSON.parse(stdout);
}

test('the examples register a provider, create a deal and read its bill', async () => {
  const registered = await example('register-provider.mjs', {
    PROVIDER_SECRET: '//Ferdie',
    PEER_ID,
    MULTIADDR: '/ip4/127.0.0.1/tcp/30555',
    GATEWAY_URL: 'http://127.0.0.1:9656',
    INGRESS_DOMAIN: 'localhost'
  });
  assert.equal(registered.registered, true);
  assert.equal(registered.peerId, PEER_ID);
  assert.equal(registered.stake, '100000000000000', 'the provider bonded the default 100 POD');

  const deal = await example('create-deal.mjs', { PUBLISHER_SECRET: '//Eve', MANIFEST_HASH: '0x' + 'cd'.repeat(32) });
  assert.equal(deal.provider, registered.provider, 'the only provider is the best offer');
  assert.ok(BigInt(deal.pricePerHour) > 0n);

  // The provider's side, by hand here (its agent does this): accept, then report usage.
  const ferdie = new Keyring({ type: 'sr25519' }).addFromUri('//Ferdie');
  await submitFinalized(api, api.tx.market.acceptDeployment(deal.id), ferdie);
  const start = (await api.query.market.deployments(deal.id)).unwrap().settledUntil.toNumber();
  const head = await new Promise((resolve) => {
    const unsub = api.rpc.chain.subscribeFinalizedHeads((h) => {
      if (h.number.toNumber() >= start + 3) { unsub.then((u) => u()); resolve(h.number.toNumber()); }
    });
  });
  await submitFinalized(api, api.tx.market.reportUsage([{
    deployment: deal.id,
    periodStart: start,
    periodEnd: head,
    cpuMillicoreSeconds: 50 * (head - start),
    memoryMibSeconds: 32 * (head - start),
    storageGibSeconds: 0,
    gpuSeconds: 0,
    egressBytes: 0
  }]), ferdie);

  const bill = await example('read-bill.mjs', { DEAL_ID: String(deal.id), FROM_BLOCK: String(start) });
  assert.equal(bill.periods.length, 1);
  assert.deepEqual(bill.periods[0].blocks, [start, head]);
  assert.equal(BigInt(bill.periods[0].total), BigInt(bill.summary.total));
});
