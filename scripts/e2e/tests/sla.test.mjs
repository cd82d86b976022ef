// SLA on a dev node: the node's off-chain worker (Alice, the only validator and prober) probes a
// provider's health server that this test runs on 127.0.0.1. Uptime is recorded on chain and a
// measurement window is met; then the server stops, the next window is missed, the provider's
// stake is slashed and the publisher's free balance rises by the compensation.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { PodchainNode, freePorts } from '../lib/node.mjs';
import { submitFinalized } from '../lib/chain.mjs';

const POD = 10n ** 12n;
const PEER_ID = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const PENALTY = 5n * POD;

let node, api, health, healthPort, provider, publisher;
/** Every SLA event seen in a finalized block, in order. */
const slaEvents = [];

/** A health endpoint that answers 200 and closes each connection, so stopping it is final. */
function startHealthServer (port) {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { connection: 'close' });
    res.end('ok');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function stopHealthServer (server) {
  return new Promise((resolve) => {
    server.close(resolve);
    server.closeAllConnections();
  });
}

/** Resolves with the first SLA event (seen so far or later) matching `predicate`. */
function waitForEvent (what, predicate, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`timed out waiting for ${what}; SLA events: ${slaEvents.map((e) => e.method).join(', ')}`));
    }, timeoutMs);
    const poll = setInterval(() => {
      const found = slaEvents.find(predicate);
      if (found) { clearTimeout(timer); clearInterval(poll); resolve(found); }
    }, 250);
  });
}

before(async () => {
  [healthPort] = await freePorts(1);
  health = await startHealthServer(healthPort);
  node = new PodchainNode({ name: 'e2e-sla', args: ['--dev'] });
  await node.start();
  api = await ApiPromise.create({ provider: new WsProvider(node.wsUrl), noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  [provider, publisher] = ['//Bob', '//Charlie'].map((uri) => keyring.addFromUri(uri));
  await api.rpc.chain.subscribeFinalizedHeads(async (header) => {
    const at = await api.at(header.hash);
    for (const { event } of await at.query.system.events()) {
      if (event.section === 'sla') slaEvents.push(Object.assign(event, { block: header.number.toNumber() }));
    }
  });
});

after(async () => {
  await api?.disconnect();
  await node?.stop();
  if (health?.listening) await stopHealthServer(health);
});

const free = async (who) => (await api.query.system.account(who)).data.free.toBigInt();

test('probes record uptime, and a missed window slashes the provider to the publisher', async () => {
  await submitFinalized(api, api.tx.registry.registerProvider({
    capacity: { resources: { cpuMillicores: 2000, memoryMib: 2048, storageGib: 10, gpus: 0 }, gpuModel: '' },
    prices: { cpuPerMillicoreSecond: 1, memoryPerMibSecond: 1, storagePerGibSecond: 1, gpuPerSecond: 0, egressPerByte: 0 },
    rentDiscount: 0,
    region: { country: 'DE', location: null },
    endpoint: { peerId: PEER_ID, multiaddrs: ['/ip4/127.0.0.1/tcp/4001'] },
    healthUrl: `http://127.0.0.1:${healthPort}/healthz`
  }), provider);
  await submitFinalized(api, api.tx.providerStaking.bond(100n * POD), provider);
  const probeWindow = api.consts.sla.probeWindow.toNumber();
  await submitFinalized(api, api.tx.sla.offerTerms({
    maxUptimeTarget: 990_000,
    minWindowBlocks: probeWindow,
    maxWindowBlocks: 10 * probeWindow,
    maxPenaltyPerWindow: 10n * POD
  }), provider);

  // Two probe windows per measurement window; 99% uptime, 5 POD per missed window.
  const terms = { uptimeTarget: 990_000, windowBlocks: 2 * probeWindow, penaltyPerWindow: PENALTY };
  const resources = { cpuMillicores: 500, memoryMib: 256, storageGib: 1, gpus: 0 };
  const created = await submitFinalized(api,
    api.tx.market.createDeployment(provider.address, '0x' + 'ab'.repeat(32), resources, 'Reserved', terms,
      { maxPrices: (await api.query.registry.providers(provider.address)).unwrap().prices, maxEgressBytesPerSecond: 1 << 20 },
      100n * POD),
    publisher);
  const id = created.find((e) => api.events.market.DeploymentCreated.is(e)).data.id.toNumber();
  await submitFinalized(api, api.tx.market.acceptDeployment(id), provider);

  // The provider's agent would name the deal every half probe window; the test does it here.
  let beating = true;
  const beats = (async () => {
    while (beating) {
      await api.tx.sla.heartbeat([id]).signAndSend(provider).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, probeWindow * 1000 / 2));
    }
  })();

  try {
    const up = await waitForEvent('an up probe of the provider',
      (e) => e.method === 'ProbeRecorded' && e.data.provider.eq(provider.address) && e.data.up.isTrue);
    assert.equal(up.data.prober.toNumber(), 0, "Alice's worker probed");
    const record = (await api.query.sla.records(provider.address)).unwrap();
    assert.ok(record.tally.up.toNumber() >= 1 || record.windowsUp.toNumber() >= 1, 'uptime is recorded on chain');

    const met = await waitForEvent('a met window',
      (e) => e.method === 'SlaMet' && e.data.deal.toNumber() === id);
    assert.equal(met.data.uptime.toNumber(), 1_000_000);
    const standing = await api.call.slaApi.standing(provider.address);
    assert.ok(standing.windowsUp.toNumber() >= 1);
    assert.equal(standing.quarantined.isTrue, false);

    // The provider goes down for good.
    await stopHealthServer(health);
    const downFrom = (await api.rpc.chain.getHeader()).number.toNumber();
    const publisherBefore = await free(publisher.address);
    const stakeBefore = (await api.query.providerStaking.ledgers(provider.address)).unwrap().active.toBigInt();

    await waitForEvent('a down probe',
      (e) => e.method === 'ProbeRecorded' && e.block > downFrom && e.data.up.isFalse);
    const missed = await waitForEvent('a missed window',
      (e) => e.method === 'SlaMissed' && e.data.deal.toNumber() === id);
    assert.ok(missed.data.uptime.toNumber() < 990_000);
    assert.equal(missed.data.compensated.toBigInt(), PENALTY, 'the publisher is paid the penalty');
    assert.equal(missed.data.slashed.toBigInt(), PENALTY + PENALTY / 10n, 'plus 10% for the treasury');

    // Read at the block of the slash: the publisher's free balance rose by the compensation.
    const slashBlock = await api.rpc.chain.getBlockHash(missed.block);
    const publisherAfter = (await (await api.at(slashBlock)).query.system.account(publisher.address)).data.free.toBigInt();
    assert.equal(publisherAfter - publisherBefore, PENALTY);
    const stakeAfter = (await (await api.at(slashBlock)).query.providerStaking.ledgers(provider.address)).unwrap().active.toBigInt();
    assert.equal(stakeBefore - stakeAfter, PENALTY + PENALTY / 10n);
  } finally {
    beating = false;
    await beats;
  }
});
