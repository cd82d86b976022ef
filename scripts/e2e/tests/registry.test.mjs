// A dev node driven through @polkadot/api (the library polkadot.js Apps is built on): read the
// metadata, register a provider as Alice, read it back from storage and through the runtime API,
// and check the events.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { u8aConcat, u8aToHex, u8aToString } from '@polkadot/util';
import { submitFinalized as submitChain } from '../lib/chain.mjs';
import { PodchainNode } from '../lib/node.mjs';

const POD = 10n ** 12n;
const PEER_ID = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';

let node;
let api;
let alice;

before(async () => {
  node = new PodchainNode({ name: 'e2e-dev', args: ['--dev'] });
  await node.start();
  api = await ApiPromise.create({ provider: new WsProvider(node.wsUrl), noInitWarn: true });
  alice = new Keyring({ type: 'sr25519' }).addFromUri('//Alice');
});

after(async () => {
  await api?.disconnect();
  await node?.stop();
});

const submitFinalized = (tx, signer) => submitChain(api, tx, signer);

function registration () {
  return {
    capacity: {
      resources: { cpuMillicores: 8000, memoryMib: 16384, storageGib: 200, gpus: 0 },
      gpuModel: ''
    },
    prices: {
      cpuPerMillicoreSecond: 3,
      memoryPerMibSecond: 1,
      storagePerGibSecond: 2,
      gpuPerSecond: 0,
      egressPerByte: 1
    },
    rentDiscount: 15,
    region: { country: 'DE', location: 'Frankfurt' },
    endpoint: { peerId: PEER_ID, multiaddrs: ['/ip4/127.0.0.1/tcp/4001'] },
    gatewayUrl: 'http://127.0.0.1:8080',
    ingressDomain: 'apps.provider.test'
  };
}

test('chain properties name the POD token with 12 decimals', async () => {
  const props = await api.rpc.system.properties();
  assert.equal(props.tokenSymbol.unwrap()[0].toString(), 'POD');
  assert.equal(props.tokenDecimals.unwrap()[0].toNumber(), 12);
  assert.equal(props.ss58Format.unwrap().toNumber(), 42);
});

test('the node stores its state in ParityDB and serves Prometheus metrics', async () => {
  assert.ok(existsSync(join(node.basePath, 'chains/podchain_dev/paritydb')), 'paritydb directory exists');
  const metrics = await (await fetch(`http://127.0.0.1:${node.prometheusPort}/metrics`)).text();
  assert.match(metrics, /substrate_block_height\{status="finalized"/);
});

test('metadata documents the registry calls, events, errors and storage', async () => {
  const call = api.tx.registry.registerProvider;
  assert.ok(call, 'registry.registerProvider is in the metadata');
  assert.match(call.meta.docs.join(' '), /Register the caller as a provider/);
  for (const name of ['updateProvider', 'pauseProvider', 'resumeProvider', 'deregisterProvider', 'allowMeasurement', 'revokeMeasurement', 'attest', 'setTcbPolicy']) {
    assert.ok(api.tx.registry[name].meta.docs.length > 0, `${name} has docs`);
  }
  const pallet = api.runtimeMetadata.asLatest.pallets.find((p) => p.name.toString() === 'Registry');
  const lookup = api.registry.lookup;
  for (const kind of ['calls', 'events', 'errors']) {
    const variants = lookup.getSiType(pallet[kind].unwrap().type).def.asVariant.variants;
    assert.ok(variants.length > 0, `${kind} exist`);
    for (const v of variants) assert.ok(v.docs.length > 0, `${kind} ${v.name} has docs`);
  }
  for (const item of pallet.storage.unwrap().items) {
    assert.ok(item.docs.length > 0, `storage ${item.name} has docs`);
  }
  assert.ok(api.call.registryApi?.matchProviders, 'the RegistryApi runtime API is in the metadata');
  assert.equal(api.consts.registry.registrationDeposit.toBigInt(), 100n * POD);
});

test('Alice registers as a provider; storage, runtime API and events agree', async () => {
  const reservedBefore = (await api.query.system.account(alice.address)).data.reserved.toBigInt();
  const events = await submitFinalized(api.tx.registry.registerProvider(registration()), alice);

  const registered = events.find((e) => api.events.registry.ProviderRegistered.is(e));
  assert.ok(registered, `ProviderRegistered among ${events.map((e) => `${e.section}.${e.method}`)}`);
  assert.equal(registered.data.provider.toString(), alice.address);
  assert.equal(registered.data.deposit.toBigInt(), 100n * POD);
  assert.ok(events.some((e) => api.events.system.ExtrinsicSuccess.is(e)));
  assert.ok(events.some((e) => api.events.balances.Held.is(e)), 'the deposit is held');

  const info = (await api.query.registry.providers(alice.address)).unwrap();
  assert.equal(info.capacity.resources.cpuMillicores.toNumber(), 8000);
  assert.equal(u8aToString(info.region.country), 'DE');
  assert.equal(u8aToString(info.region.location.unwrap()), 'Frankfurt');
  assert.equal(u8aToString(info.endpoint.peerId), PEER_ID);
  assert.equal(info.status.toString(), 'Active');
  assert.equal(info.deposit.toBigInt(), 100n * POD);
  assert.equal((await api.query.registry.providerCount()).toNumber(), 1);

  const reservedAfter = (await api.query.system.account(alice.address)).data.reserved.toBigInt();
  assert.equal(reservedAfter - reservedBefore, 100n * POD, 'deposit shows as reserved');

  const view = (await api.call.registryApi.provider(alice.address)).unwrap();
  assert.equal(view.attested.isTrue, false);
  assert.equal(view.info.prices.cpuPerMillicoreSecond.toBigInt(), 3n);

  const requirements = {
    resources: { cpuMillicores: 2000, memoryMib: 4096, storageGib: 20, gpus: 0 },
    country: 'DE',
    gpuModel: null,
    attestedOnly: false,
    maxPricePerHour: null,
    limit: 10
  };
  const matches = await api.call.registryApi.matchProviders(requirements);
  assert.equal(matches.length, 1);
  assert.equal(matches[0].provider.toString(), alice.address);
  // (3 * 2000 + 1 * 4096 + 2 * 20) planck per second, for an hour.
  assert.equal(matches[0].pricePerHour.toBigInt(), (3n * 2000n + 4096n + 40n) * 3600n);

  const elsewhere = await api.call.registryApi.matchProviders({ ...requirements, country: 'FR' });
  assert.equal(elsewhere.length, 0);
  const attestedOnly = await api.call.registryApi.matchProviders({ ...requirements, attestedOnly: true });
  assert.equal(attestedOnly.length, 0);
});

test('a second registration fails with the named error AlreadyRegistered', async () => {
  await assert.rejects(
    submitFinalized(api.tx.registry.registerProvider(registration()), alice),
    /registry\.AlreadyRegistered/
  );
});

test('bad input is refused with a named error', async () => {
  const bob = new Keyring({ type: 'sr25519' }).addFromUri('//Bob');
  const badCountry = { ...registration(), region: { country: 'XX', location: null } };
  await assert.rejects(submitFinalized(api.tx.registry.registerProvider(badCountry), bob), /registry\.InvalidCountryCode/);
  const badAddr = { ...registration(), endpoint: { peerId: PEER_ID, multiaddrs: ['/ip4/300.1.1.1/tcp/1'] } };
  await assert.rejects(submitFinalized(api.tx.registry.registerProvider(badAddr), bob), /registry\.InvalidMultiaddr/);
  assert.ok((await api.query.registry.providers(bob.address)).isNone);
});

// Intel's genuine sample TDX quote and its collateral (primitives/attestation/fixtures).
const FIXTURES = new URL('../../../primitives/attestation/fixtures/', import.meta.url);

function sampleCollateral () {
  const json = JSON.parse(readFileSync(new URL('tdx_quote_collateral.json', FIXTURES), 'utf8'));
  // Text fields go as text, binary ones (hex in the JSON) as bytes.
  const bin = (hex) => '0x' + hex;
  return {
    pckCrlIssuerChain: json.pck_crl_issuer_chain,
    rootCaCrl: bin(json.root_ca_crl),
    pckCrl: bin(json.pck_crl),
    tcbInfoIssuerChain: json.tcb_info_issuer_chain,
    tcbInfo: json.tcb_info,
    tcbInfoSignature: bin(json.tcb_info_signature),
    qeIdentityIssuerChain: json.qe_identity_issuer_chain,
    qeIdentity: json.qe_identity,
    qeIdentitySignature: bin(json.qe_identity_signature),
    pckCertificateChain: null
  };
}

test('attestation takes a quote the node verifies: nothing self-declared counts', async () => {
  const raw = readFileSync(new URL('tdx_quote', FIXTURES));
  // Bytes go as hex: @polkadot/api reads a raw Uint8Array as already SCALE-encoded.
  const quote = u8aToHex(raw);
  // The measurement a TDX quote reports: MRTD and RTMR0-3, read from the quote's body.
  const measurement = u8aConcat(raw.subarray(48 + 136, 48 + 184), raw.subarray(48 + 328, 48 + 520));
  assert.equal(measurement.length, 240);
  const allow = api.tx.registry.allowMeasurement('IntelTdx', u8aToHex(measurement));
  const allowed = await submitFinalized(api.tx.sudo.sudo(allow), alice);
  assert.ok(allowed.some((e) => api.events.registry.MeasurementAllowed.is(e)));
  // Allowing a measurement attests nobody: only a verified quote does.
  assert.equal((await api.call.registryApi.provider(alice.address)).unwrap().attested.isTrue, false);

  const sealingKey = '0x' + '05'.repeat(32);
  const bob = new Keyring({ type: 'sr25519' }).addFromUri('//Bob');
  await assert.rejects(
    submitFinalized(api.tx.registry.attest(quote, sampleCollateral(), sealingKey), bob),
    /registry\.NotProvider/
  );
  await assert.rejects(
    submitFinalized(api.tx.registry.attest(u8aToHex(raw.subarray(0, 600)), sampleCollateral(), sealingKey), alice),
    /registry\.QuoteMalformed/
  );
  // The genuine quote runs through the node's DCAP verifier at the chain's time: its collateral
  // expired in July 2025 (at a time it was valid, the runtime's own test shows it refused for
  // the binding: its report data commits to no podchain provider).
  await assert.rejects(
    submitFinalized(api.tx.registry.attest(quote, sampleCollateral(), sealingKey), alice),
    /registry\.CollateralExpired/
  );
  const info = (await api.query.registry.providers(alice.address)).unwrap();
  assert.ok(info.attestation.isNone);
  assert.equal((await api.call.registryApi.provider(alice.address)).unwrap().attested.isTrue, false);
});
