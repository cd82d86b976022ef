// SLA on a dev node: the node's off-chain worker (Alice, the only validator and prober) requests
// a deal's health path through a provider gateway that this test runs on 127.0.0.1, with the
// deal's host name. The tiny gateway answers the tenant's health path only for that host, so an
// up verdict shows the node's HTTP client sent the Host header it was given. A measurement
// window is met; then the tenant (not the gateway) answers 503, the next window is missed, and
// the publisher is compensated from the provider's stake with at most what it paid for the
// window.

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
const DOMAIN = 'localhost';
const NAME = 'web';

let node, api, gateway, gatewayPort, provider, publisher;
/** Whether the tenant behind the gateway answers its health path. */
let tenantUp = true;
/** Host headers the gateway received. */
const hostsSeen = new Set();
/** Every SLA event seen in a finalized block, in order. */
const slaEvents = [];

/**
 * A gateway like the agent's: routes by Host. `<NAME>.<DOMAIN>` reaches the tenant, which
 * answers `/healthz` with 200 `ok` while up and 503 otherwise; any other host gets 404.
 */
function startGateway (port) {
  const server = createServer((req, res) => {
    const host = (req.headers.host || '').toLowerCase();
    hostsSeen.add(host);
    let status = 404;
    let body = 'no such host';
    if (host === `${NAME}.${DOMAIN}`) {
      [status, body] = req.url !== '/healthz' ? [404, 'not found'] : tenantUp ? [200, 'status: ok'] : [503, 'down'];
    }
    res.writeHead(status, { connection: 'close' });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
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
  [gatewayPort] = await freePorts(1);
  gateway = await startGateway(gatewayPort);
  node = new PodchainNode({ name: 'e2e-sla', args: ['--dev'] });
  await node.start();
  api = await ApiPromise.create({ provider: new WsProvider(node.wsUrl), noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  [provider, publisher] = ['//Bob', '//Charlie'].map((uri) => keyring.addFromUri(uri));
  // A finalized-head notification may cover several blocks at once (GRANDPA finalizes them
  // together): every block up to it is read, in order, one notification after another.
  let lastRead = (await api.rpc.chain.getHeader(await api.rpc.chain.getFinalizedHead())).number.toNumber();
  let reading = Promise.resolve();
  await api.rpc.chain.subscribeFinalizedHeads((header) => {
    const upTo = header.number.toNumber();
    reading = reading.then(async () => {
      for (let number = lastRead + 1; number <= upTo; number++) {
        const at = await api.at(await api.rpc.chain.getBlockHash(number));
        for (const { event } of await at.query.system.events()) {
          if (event.section === 'sla') slaEvents.push(Object.assign(event, { block: number }));
        }
        lastRead = number;
      }
    }).catch((e) => console.error('reading finalized blocks failed:', e));
  });
});

after(async () => {
  await api?.disconnect();
  await node?.stop();
  if (gateway?.listening) {
    await new Promise((resolve) => { gateway.close(resolve); gateway.closeAllConnections(); });
  }
});

const free = async (who) => (await api.query.system.account(who)).data.free.toBigInt();

test("probes of the tenant's health path record uptime, and a missed window compensates at most what was paid", async () => {
  await submitFinalized(api, api.tx.registry.registerProvider({
    capacity: { resources: { cpuMillicores: 2000, memoryMib: 2048, storageGib: 10, gpus: 0 }, gpuModel: '' },
    prices: { cpuPerMillicoreSecond: 1_000_000, memoryPerMibSecond: 1, storagePerGibSecond: 1, gpuPerSecond: 0, egressPerByte: 0 },
    rentDiscount: 0,
    region: { country: 'DE', location: null },
    endpoint: { peerId: PEER_ID, multiaddrs: ['/ip4/127.0.0.1/tcp/4001'] },
    gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
    ingressDomain: DOMAIN
  }), provider);
  await submitFinalized(api, api.tx.providerStaking.bond(100n * POD), provider);
  const probeWindow = api.consts.sla.probeWindow.toNumber();
  await submitFinalized(api, api.tx.sla.offerTerms({
    maxUptimeTarget: 990_000,
    minWindowBlocks: probeWindow,
    maxWindowBlocks: 10 * probeWindow,
    maxPenaltyPerWindow: 10n * POD
  }), provider);

  // Two probe windows per measurement window; 99% uptime, up to 5 POD per missed window.
  const terms = {
    uptimeTarget: 990_000,
    windowBlocks: 2 * probeWindow,
    penaltyPerWindow: PENALTY,
    health: { path: '/healthz', expectStatus: 200, expectBody: 'ok' }
  };
  const resources = { cpuMillicores: 500, memoryMib: 256, storageGib: 1, gpus: 0 };
  const created = await submitFinalized(api,
    api.tx.market.createDeployment(provider.address, '0x' + 'ab'.repeat(32), resources, 'Reserved', terms,
      { maxPrices: (await api.query.registry.providers(provider.address)).unwrap().prices, maxEgressBytesPerSecond: 1 << 20 },
      100n * POD),
    publisher);
  const id = created.find((e) => api.events.market.DeploymentCreated.is(e)).data.id.toNumber();
  await submitFinalized(api, api.tx.market.acceptDeployment(id), provider);
  await submitFinalized(api, api.tx.market.registerName(id, NAME), publisher);

  // The provider's agent would name the deal every half probe window; the test does it here.
  let beating = true;
  const beats = (async () => {
    while (beating) {
      await api.tx.sla.heartbeat([id]).signAndSend(provider).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, probeWindow * 1000 / 2));
    }
  })();

  const decided = (outcome, after = 0) => (e) => e.method === 'DealWindowDecided' &&
    e.data.deal.toNumber() === id && e.data.outcome.toString() === outcome && e.block > after;
  try {
    // Finalized heads may skip blocks, so the start is read from storage, not waited for.
    const up = await waitForEvent('an up probe window of the deal', decided('Up'));
    const measurement = (await api.query.sla.tracked(id)).unwrap().measurement;
    assert.ok(measurement.isSince, `the heartbeat started the measurement: ${measurement}`);
    assert.ok(up.data.window.toNumber() >= measurement.asSince.toNumber());
    assert.ok(hostsSeen.has(`${NAME}.${DOMAIN}`), `the gateway saw the deal's host; it saw ${[...hostsSeen]}`);
    const probe = slaEvents.find((e) => e.method === 'ProbeRecorded' && e.data.provider.eq(provider.address) && e.data.up.toNumber() >= 1);
    assert.ok(probe, "Alice's worker's probe counted an up verdict");

    const met = await waitForEvent('a met window',
      (e) => e.method === 'SlaMet' && e.data.deal.toNumber() === id);
    assert.equal(met.data.uptime.toNumber(), 1_000_000);
    const standing = await api.call.slaApi.standing(provider.address);
    assert.ok(standing.windowsUp.toNumber() >= 1);
    assert.equal(standing.quarantined.isTrue, false);

    // The tenant stops answering its health check; the gateway (the agent) still runs.
    tenantUp = false;
    const downFrom = (await api.rpc.chain.getHeader()).number.toNumber();
    const publisherBefore = await free(publisher.address);

    await waitForEvent('a down probe window of the deal', decided('Down', downFrom));
    const missed = await waitForEvent('a missed window',
      (e) => e.method === 'SlaMissed' && e.data.deal.toNumber() === id && e.block > downFrom);
    assert.ok(missed.data.uptime.toNumber() < 990_000);
    const slashed = await waitForEvent('the slash',
      (e) => e.method === 'PenaltySlashed' && e.data.deal.toNumber() === id && e.block === missed.block);

    // The credit is what the publisher paid since the previous settlement, at most the penalty.
    const slashHash = await api.rpc.chain.getBlockHash(missed.block);
    const before = await api.at((await api.rpc.chain.getHeader(slashHash)).parentHash);
    const at = await api.at(slashHash);
    const paidBefore = (await before.query.sla.tracked(id)).unwrap().paidAtSettlement.toBigInt();
    const paidAfter = (await at.query.sla.tracked(id)).unwrap().paidAtSettlement.toBigInt();
    const paid = paidAfter - paidBefore;
    const owed = paid < PENALTY ? paid : PENALTY;
    assert.ok(owed > 0n, 'the window was paid for');
    assert.equal(missed.data.penalty.toBigInt(), owed);
    assert.equal(slashed.data.compensated.toBigInt(), owed, 'the publisher gets what it paid back');
    // 10% for the treasury, rounded to the nearest planck (halves down), as Perbill rounds.
    const surcharge = owed / 10n + (owed % 10n > 5n ? 1n : 0n);
    assert.equal(slashed.data.slashed.toBigInt(), owed + surcharge, 'plus 10% for the treasury');

    // Read at the block of the slash: the publisher's free balance rose by the compensation.
    const publisherAfter = (await at.query.system.account(publisher.address)).data.free.toBigInt();
    assert.equal(publisherAfter - publisherBefore, owed);
  } finally {
    beating = false;
    await beats;
  }
});
