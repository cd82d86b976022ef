// A deal on a dev node through @polkadot/api: a provider registers, a publisher creates a metered
// deployment, the provider accepts it and reports usage; balances move by exactly the bill.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { stringToU8a, u8aConcat } from '@polkadot/util';
import { encodeAddress } from '@polkadot/util-crypto';
import { PodchainNode } from '../lib/node.mjs';
import { submitFinalized } from '../lib/chain.mjs';

const POD = 10n ** 12n;
const PEER_ID = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
// Pallet accounts: "modl" + the PalletId, zero-padded to 32 bytes.
const palletAccount = (id) => encodeAddress(u8aConcat(stringToU8a(`modl${id}`), new Uint8Array(20)), 42);
const TREASURY = palletAccount('pod/trsy');
// Every deal's escrow sits in the market's account.
const ESCROW = palletAccount('pod/mrkt');
const PRICES = { cpuPerMillicoreSecond: 1000, memoryPerMibSecond: 100, storagePerGibSecond: 10, gpuPerSecond: 0, egressPerByte: 1 };
// The publisher's bounds: the quote it saw, and egress up to 1 MiB/s.
const limitsOf = (prices) => ({ maxPrices: prices, maxEgressBytesPerSecond: 1n << 20n });

let node, api, alice, provider, publisher;

before(async () => {
  node = new PodchainNode({ name: 'e2e-market', args: ['--dev'] });
  await node.start();
  api = await ApiPromise.create({ provider: new WsProvider(node.wsUrl), noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  [alice, provider, publisher] = ['//Alice', '//Bob', '//Charlie'].map((uri) => keyring.addFromUri(uri));
});

after(async () => {
  await api?.disconnect();
  await node?.stop();
});

const free = async (who) => (await api.query.system.account(who)).data.free.toBigInt();
const escrowOf = async (id) => (await api.query.market.deployments(id)).unwrap().escrow.toBigInt();
const find = (events, event) => events.find((e) => event.is(e));

test('a metered deal bills exactly what the provider reports', async () => {
  await submitFinalized(api, api.tx.registry.registerProvider({
    capacity: { resources: { cpuMillicores: 4000, memoryMib: 8192, storageGib: 100, gpus: 0 }, gpuModel: '' },
    prices: PRICES,
    rentDiscount: 10,
    region: { country: 'NL', location: null },
    endpoint: { peerId: PEER_ID, multiaddrs: ['/ip4/127.0.0.1/tcp/4001'] },
    gatewayUrl: 'http://127.0.0.1:8080',
    ingressDomain: 'localhost'
  }), provider);
  // Accepting needs stake for the committed capacity (dev chain: 10 POD + 10 per core + ...).
  await submitFinalized(api, api.tx.providerStaking.bond(100n * POD), provider);
  await submitFinalized(api, api.tx.sudo.sudo(api.tx.market.setProtocolFee(100_000_000)), alice); // 10%

  const resources = { cpuMillicores: 500, memoryMib: 512, storageGib: 1, gpus: 0 };
  const escrowAccountBefore = await free(ESCROW);
  // A provider raising its prices above what the publisher saw is refused at execution.
  await assert.rejects(submitFinalized(api,
    api.tx.market.createDeployment(provider.address, '0x' + 'ab'.repeat(32), resources, 'Metered', null,
      limitsOf({ ...PRICES, cpuPerMillicoreSecond: 999 }), 10n * POD),
    publisher), /market\.PriceAboveLimit/);
  const created = await submitFinalized(api,
    api.tx.market.createDeployment(provider.address, '0x' + 'ab'.repeat(32), resources, 'Metered', null,
      limitsOf(PRICES), 10n * POD),
    publisher);
  const id = find(created, api.events.market.DeploymentCreated).data.id.toNumber();
  assert.equal(await escrowOf(id), 10n * POD);
  assert.equal(await free(ESCROW) - escrowAccountBefore, 10n * POD, 'the deposit is in the escrow account');

  await submitFinalized(api, api.tx.market.acceptDeployment(id), provider);
  const accepted = (await api.query.market.deployments(id)).unwrap();
  assert.equal(accepted.state.isActive, true);
  const start = accepted.settledUntil.toNumber();

  // Let a few blocks pass, then report a period of them.
  const head = await new Promise((resolve) => {
    const unsub = api.rpc.chain.subscribeFinalizedHeads((h) => {
      if (h.number.toNumber() >= start + 4) { unsub.then((u) => u()); resolve(h.number.toNumber()); }
    });
  });
  const seconds = BigInt(head - start); // 1 s blocks on the dev chain
  const usage = {
    deployment: id,
    periodStart: start,
    periodEnd: head,
    cpuMillicoreSeconds: 250n * seconds,
    memoryMibSeconds: 256n * seconds,
    storageGibSeconds: seconds,
    gpuSeconds: 0,
    egressBytes: 5000
  };
  const expected = 1000n * 250n * seconds + 100n * 256n * seconds + 10n * seconds + 5000n;

  const [providerBefore, escrowBefore, treasuryBefore] =
    [await free(provider.address), await escrowOf(id), await free(TREASURY)];
  const events = await submitFinalized(api, api.tx.market.reportUsage([usage]), provider);
  const settled = find(events, api.events.market.Settled);
  assert.ok(settled, `Settled among ${events.map((e) => `${e.section}.${e.method}`)}`);
  const total = settled.data.total.toBigInt();
  const fee = settled.data.fee.toBigInt();
  assert.equal(total, expected, 'the bill is price x usage');
  assert.equal(fee, total / 10n, 'the protocol fee is 10%');
  assert.equal(settled.data.charges.egress.toBigInt(), 5000n);

  const paid = find(events, api.events.transactionPayment.TransactionFeePaid);
  const txFee = paid.data.actualFee.toBigInt() + paid.data.tip.toBigInt();
  assert.equal(await free(provider.address) - providerBefore, total - fee - txFee,
    'the provider got the bill less the protocol fee (and paid its transaction fee)');
  assert.equal(settled.data.unpaid.toBigInt(), 0n, 'the escrow covered it');
  assert.equal(escrowBefore - await escrowOf(id), total, 'the deal\'s escrow fell by the bill');
  assert.equal(await free(TREASURY) - treasuryBefore, fee, 'the treasury got the fee');

  const bill = (await api.call.marketApi.bill(id)).unwrap();
  assert.equal(bill.total.toBigInt(), total);
  assert.equal(bill.settledUntil.toNumber(), head);

  // The provider decommissions: the rest of the escrow goes back.
  const closed = await submitFinalized(api, api.tx.market.closeDeployment(id, 'ProviderDecommission'), provider);
  const event = find(closed, api.events.market.DeploymentClosed);
  assert.equal(event.data.refunded.toBigInt(), 10n * POD - total);
  assert.equal(await free(ESCROW), escrowAccountBefore, 'nothing of the deal is left in escrow');
  assert.ok((await api.query.market.deployments(id)).isNone);
});

test('a report above the reserved resources is refused alone', async () => {
  const resources = { cpuMillicores: 100, memoryMib: 64, storageGib: 1, gpus: 0 };
  const created = await submitFinalized(api,
    api.tx.market.createDeployment(provider.address, '0x' + 'cd'.repeat(32), resources, 'Metered', null,
      limitsOf(PRICES), 5n * POD),
    publisher);
  const id = find(created, api.events.market.DeploymentCreated).data.id.toNumber();
  await submitFinalized(api, api.tx.market.acceptDeployment(id), provider);
  const start = (await api.query.market.deployments(id)).unwrap().settledUntil.toNumber();
  // A period must not be empty: wait for a block after the one the deal was accepted in.
  let now = (await api.rpc.chain.getHeader()).number.toNumber();
  while (now <= start) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    now = (await api.rpc.chain.getHeader()).number.toNumber();
  }
  const greedy = {
    deployment: id, periodStart: start, periodEnd: now, cpuMillicoreSeconds: 10n ** 12n,
    memoryMibSeconds: 0, storageGibSeconds: 0, gpuSeconds: 0, egressBytes: 0
  };
  const events = await submitFinalized(api, api.tx.market.reportUsage([greedy]), provider);
  const rejected = find(events, api.events.market.UsageReportRejected);
  assert.ok(rejected);
  const error = api.registry.findMetaError(rejected.data.error.asModule);
  assert.equal(`${error.section}.${error.name}`, 'market.UsageAboveReserved');
  assert.equal(await escrowOf(id), 5n * POD, 'nothing was charged');
});

test('a rented provider serves only its renter, whose deployments pay only egress', async () => {
  const keyring = new Keyring({ type: 'sr25519' });
  const [host, renter, stranger] = ['//Dave', '//Eve', '//Ferdie'].map((uri) => keyring.addFromUri(uri));
  await submitFinalized(api, api.tx.registry.registerProvider({
    capacity: { resources: { cpuMillicores: 8000, memoryMib: 16384, storageGib: 200, gpus: 0 }, gpuModel: '' },
    prices: { cpuPerMillicoreSecond: 1000, memoryPerMibSecond: 100, storagePerGibSecond: 10, gpuPerSecond: 0, egressPerByte: 10 },
    rentDiscount: 20,
    region: { country: 'DE', location: null },
    endpoint: { peerId: PEER_ID, multiaddrs: ['/ip4/127.0.0.1/tcp/4002'] },
    gatewayUrl: 'http://127.0.0.1:8081',
    ingressDomain: 'localhost'
  }), host);
  // A rent commits the whole capacity: 10 + 8 x 10 + 16 x 1 + 200 x 0.1 = 126 POD of stake.
  await submitFinalized(api, api.tx.providerStaking.bond(200n * POD), host);

  const hostPrices = { cpuPerMillicoreSecond: 1000, memoryPerMibSecond: 100, storagePerGibSecond: 10, gpuPerSecond: 0, egressPerByte: 10 };
  const created = await submitFinalized(api,
    api.tx.market.createRent(host.address, limitsOf(hostPrices), 100n * POD), renter);
  const rentId = find(created, api.events.market.RentCreated).data.id.toNumber();
  await submitFinalized(api, api.tx.market.acceptDeployment(rentId), host);
  const rent = (await api.query.market.deployments(rentId)).unwrap();
  assert.equal(rent.kind.isRent, true);
  assert.equal(rent.prices.cpuPerMillicoreSecond.toBigInt(), 800n, '20% off the list price');
  assert.equal(rent.resources.cpuMillicores.toNumber(), 8000, 'the whole capacity');
  assert.equal((await api.query.market.rents(host.address)).unwrap().toNumber(), rentId);

  const resources = { cpuMillicores: 500, memoryMib: 512, storageGib: 1, gpus: 0 };
  await assert.rejects(
    submitFinalized(api, api.tx.market.createDeployment(host.address, '0x' + 'ef'.repeat(32), resources, 'Metered', null,
      limitsOf(hostPrices), POD), stranger),
    /market\.ProviderRented/);
  const placed = await submitFinalized(api,
    api.tx.market.createDeployment(host.address, '0x' + 'ef'.repeat(32), resources, 'Metered', null,
      limitsOf(hostPrices), POD), renter);
  const id = find(placed, api.events.market.DeploymentCreated).data.id.toNumber();
  const deal = (await api.query.market.deployments(id)).unwrap();
  assert.equal(deal.kind.asInRent.rent.toNumber(), rentId);
  assert.equal(deal.prices.cpuPerMillicoreSecond.toBigInt(), 0n, 'compute is paid by the rent');
  assert.equal(deal.prices.egressPerByte.toBigInt(), 8n, 'egress at the rent\'s price');

  // Ending the rent ends the deployments in it.
  const closed = await submitFinalized(api, api.tx.market.closeDeployment(rentId, 'PublisherRequest'), renter);
  const reasons = closed.filter((e) => api.events.market.DeploymentClosed.is(e))
    .map((e) => [e.data.id.toNumber(), e.data.reason.type]);
  assert.deepEqual(reasons.sort(), [[id, 'RentEnded'], [rentId, 'PublisherRequest']].sort());
  assert.ok((await api.query.market.rents(host.address)).isNone);
});
