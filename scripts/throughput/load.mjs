// Load generator of the node throughput benchmark (run by scripts/throughput.sh).
//
// Against one running dev node: funds `--senders` fresh accounts from the well-known dev
// accounts, pre-signs `--per-sender` balance transfers for each (explicit nonces, immortal),
// submits them all over `--connections` WebSocket connections as fast as the node accepts
// them, waits until the chain has included them, and then reads back from the chain, block by
// block, how many of the transfers succeeded (Balances.Transfer events from the load's
// senders), the block timestamps, the weight and length each block used. Prints a per-block
// table and a summary, and writes the summary as JSON to `--out`.
//
// Figures come from what the chain included, never from what was submitted.

import { ApiPromise, Keyring, WsProvider } from '@polkadot/api';
import { compactToU8a, u8aConcat, u8aToHex, u8aToU8a } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    ws: { type: 'string', default: 'ws://127.0.0.1:9944' },
    label: { type: 'string', default: 'node' },
    senders: { type: 'string', default: '400' },
    'per-sender': { type: 'string', default: '100' },
    connections: { type: 'string', default: '4' },
    // Lanes (requests in flight) per connection; the node's RPC server buffers 64 per
    // connection.
    inflight: { type: 'string', default: '48' },
    // Give up waiting for inclusion after this many blocks without a new transfer, or after
    // this many seconds in all (a node that stops making blocks).
    'stall-blocks': { type: 'string', default: '5' },
    'max-wait': { type: 'string', default: '1800' },
    out: { type: 'string' }
  }
});

const SENDERS = Number(opts.senders);
const PER_SENDER = Number(opts['per-sender']);
const CONNECTIONS = Number(opts.connections);
const INFLIGHT = Number(opts.inflight);
const STALL_BLOCKS = Number(opts['stall-blocks']);
const MAX_WAIT_S = Number(opts['max-wait']);
const FUNDERS = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'];

const log = (...args) => console.log(`[${opts.label}]`, ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now() / 1000;

async function bestNumber (api) {
  return (await api.rpc.chain.getHeader()).number.toNumber();
}

/** Waits until `check()` is truthy, polling once a second, for at most `timeoutS`. */
async function waitUntil (what, check, timeoutS) {
  const deadline = now() + timeoutS;
  while (now() < deadline) {
    if (await check()) return;
    await sleep(1000);
  }
  throw new Error(`timed out after ${timeoutS} s waiting for ${what}`);
}

/**
 * Submits the hex-encoded extrinsics of `lanes[c][w]` over connection `c`, every lane `w` one
 * request at a time and in order, all lanes at once. A sender's transfers all go in one lane,
 * so the node has accepted nonce k before nonce k + 1 reaches it, as a wallet would send them.
 * Returns how many the node accepted and the rejections by message.
 */
async function submitAll (providers, lanes) {
  let accepted = 0;
  const rejected = new Map();
  await Promise.all(lanes.flatMap((connectionLanes, c) => connectionLanes.map(async (lane) => {
    for (const hex of lane) {
      try {
        await providers[c].send('author_submitExtrinsic', [hex]);
        accepted++;
      } catch (err) {
        const key = String(err.message || err).slice(0, 120);
        rejected.set(key, (rejected.get(key) || 0) + 1);
      }
    }
  })));
  return { accepted, rejected: Object.fromEntries(rejected) };
}

/** Signs `call` by `pair` with an explicit nonce, immortal, against the genesis hash. */
function signOffline (api, call, pair, nonce) {
  return signedOffline(api, call, pair, nonce).toHex();
}

function signedOffline (api, call, pair, nonce) {
  return call.sign(pair, {
    blockHash: api.genesisHash,
    genesisHash: api.genesisHash,
    nonce,
    runtimeVersion: api.runtimeVersion,
    signedExtensions: api.registry.signedExtensions,
    version: api.extrinsicType
  });
}

/**
 * Signs balance transfers fast: encodes the signing payload and the extrinsic by hand (the
 * general path of @polkadot/api builds a dozen codec objects per transaction, which makes
 * pre-signing tens of thousands take minutes). The encoding is checked once against what
 * @polkadot/api would sign, so a change of the runtime's extensions fails loudly.
 */
function transferSigner (api, sample) {
  const genesis = api.genesisHash.toU8a();
  const version = api.runtimeVersion;
  const u32 = (n) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; };
  // Extensions with data: CheckMortality (immortal = 00), CheckNonce (compact),
  // ChargeTransactionPayment (compact tip 0), CheckMetadataHash (mode 0 = off).
  const explicit = (nonce) => u8aConcat([0x00], compactToU8a(nonce), [0x00], [0x00]);
  // Implicit, signed but not sent: spec and transaction versions, genesis hash twice (the
  // genesis and, for an immortal era, the era's block), no metadata hash.
  const implicit = u8aConcat(u32(version.specVersion.toNumber()), u32(version.transactionVersion.toNumber()), genesis, genesis, [0x00]);
  const expected = ['CheckNonZeroSender', 'CheckSpecVersion', 'CheckTxVersion', 'CheckGenesis', 'CheckMortality',
    'CheckNonce', 'CheckWeight', 'ChargeTransactionPayment', 'CheckMetadataHash', 'WeightReclaim'];
  if (JSON.stringify(api.registry.signedExtensions) !== JSON.stringify(expected)) {
    throw new Error(`unexpected transaction extensions: ${api.registry.signedExtensions}`);
  }
  const calls = new Map();
  const sign = (pair, dest, nonce) => {
    if (!calls.has(dest)) calls.set(dest, api.tx.balances.transferKeepAlive(dest, 1).method.toU8a());
    const call = calls.get(dest);
    const extra = explicit(nonce);
    const signature = pair.sign(u8aConcat(call, extra, implicit));
    const body = u8aConcat([0x84, 0x00], pair.publicKey, [0x01], signature, extra, call);
    return u8aToHex(u8aConcat(compactToU8a(body.length), body));
  };
  // Check the hand-made encoding against @polkadot/api's, on the sample.
  const { pair, dest, nonce } = sample;
  const theirs = api.registry.createType('SignerPayload', {
    address: pair.address,
    blockHash: api.genesisHash,
    genesisHash: api.genesisHash,
    method: api.tx.balances.transferKeepAlive(dest, 1).method,
    nonce,
    runtimeVersion: version,
    signedExtensions: api.registry.signedExtensions,
    version: 4
  }).toRaw().data;
  const call = api.tx.balances.transferKeepAlive(dest, 1).method.toU8a();
  const ours = u8aToHex(u8aConcat(call, explicit(nonce), implicit));
  if (ours !== theirs) throw new Error(`hand-encoded signing payload ${ours} differs from @polkadot/api's ${theirs}`);
  const tx = api.tx(u8aToU8a(sign(pair, dest, nonce)));
  if (!tx.isSigned || tx.signer.toString() !== pair.address || tx.nonce.toNumber() !== nonce) {
    throw new Error('hand-encoded transfer does not decode as signed by its sender');
  }
  return sign;
}

async function main () {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(opts.ws), noInitWarn: true });
  const keyring = new Keyring({ type: 'sr25519' });
  const runtime = api.runtimeVersion.specName.toString();

  await waitUntil('two blocks', async () => (await bestNumber(api)) >= 2, 120);

  const slotMs = (await api.call.auraApi.slotDuration()).toNumber();
  const weights = api.consts.system.blockWeights;
  const normalMax = weights.perClass.normal.maxTotal.unwrap().refTime.toBigInt();
  const lengthMax = api.consts.system.blockLength.max.normal.toNumber();
  const ed = api.consts.balances.existentialDeposit.toBigInt();
  log(`runtime ${runtime}, slot ${slotMs} ms, normal weight limit ${Number(normalMax) / 1e12} s, ` +
    `normal length limit ${lengthMax} bytes`);

  const senders = Array.from({ length: SENDERS }, (_, i) => keyring.addFromUri(`//podchain-load//${i}`));
  const senderSet = new Set(senders.map((s) => s.address));
  const funders = FUNDERS.map((name) => keyring.addFromUri(`//${name}`));

  // The weight of one transfer, its fee, and its encoded length, from the runtime itself.
  const sample = api.tx.balances.transferKeepAlive(senders[1 % SENDERS].address, 1);
  const signedSample = signedOffline(api, sample, senders[0], 0);
  const info = await sample.paymentInfo(senders[0]);
  const transferWeight = info.weight.refTime.toBigInt();
  const fee = info.partialFee.toBigInt();
  const transferLen = signedSample.encodedLength;
  log(`one transfer: weight ${(Number(transferWeight) / 1e9).toFixed(3)} ms ref time, fee ${fee}, ${transferLen} bytes; ` +
    `the weight limit fits ${normalMax / transferWeight}, the length limit ${Math.floor(lengthMax / transferLen)} per block`);

  // Fund the senders: enough for every fee, each 1-unit transfer, and a margin above the
  // existential deposit.
  const funding = BigInt(PER_SENDER) * (fee * 2n + 1n) + ed * 100n;
  const funderNonces = await Promise.all(funders.map(async (f) => (await api.rpc.system.accountNextIndex(f.address)).toNumber()));
  const fundingTxs = senders.map((s, i) => {
    const f = i % funders.length;
    return signOffline(api, api.tx.balances.transferKeepAlive(s.address, funding), funders[f], funderNonces[f]++);
  });
  const fundingProvider = new WsProvider(opts.ws);
  await fundingProvider.isReady;
  // One lane per funder, each in nonce order.
  const fundingLanes = funders.map((_, f) => fundingTxs.filter((_, i) => i % funders.length === f));
  const fundingResult = await submitAll([fundingProvider], [fundingLanes]);
  await fundingProvider.disconnect();
  if (fundingResult.accepted !== SENDERS) throw new Error(`funding rejected: ${JSON.stringify(fundingResult.rejected)}`);
  await waitUntil('the senders to be funded', async () => {
    const accounts = await api.query.system.account.multi(senders.map((s) => s.address));
    return accounts.every((a) => a.data.free.toBigInt() >= funding);
  }, 300);
  const nonces = await Promise.all(senders.map(async (s) => (await api.rpc.system.accountNextIndex(s.address)).toNumber()));
  log(`funded ${SENDERS} senders with ${funding} each`);

  // Pre-sign everything before the measurement. Sender i pays sender i+1 (an existing
  // account, so every transfer succeeds). Sender i's transfers go, in nonce order, over
  // connection i % CONNECTIONS in lane (i / CONNECTIONS) % INFLIGHT; a lane interleaves its
  // senders' nonces so that the pool always has ready transactions.
  let t = now();
  const signTransfer = transferSigner(api, { pair: senders[0], dest: senders[1 % SENDERS].address, nonce: 7 });
  const lanes = Array.from({ length: CONNECTIONS }, () => Array.from({ length: INFLIGHT }, () => []));
  for (let k = 0; k < PER_SENDER; k++) {
    for (let i = 0; i < SENDERS; i++) {
      const lane = lanes[i % CONNECTIONS][Math.floor(i / CONNECTIONS) % INFLIGHT];
      lane.push(signTransfer(senders[i], senders[(i + 1) % SENDERS].address, nonces[i] + k));
    }
  }
  const total = SENDERS * PER_SENDER;
  log(`pre-signed ${total} transfers in ${(now() - t).toFixed(1)} s`);

  const providers = await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    const provider = new WsProvider(opts.ws, false);
    await provider.connect();
    await provider.isReady;
    return provider;
  }));

  const startBlock = await bestNumber(api);
  t = now();
  const submitted = await submitAll(providers, lanes);
  const submitSeconds = now() - t;
  const submitEndBlock = await bestNumber(api);
  log(`submitted ${total} in ${submitSeconds.toFixed(1)} s (${(total / submitSeconds).toFixed(0)}/s): ` +
    `${submitted.accepted} accepted, rejected ${JSON.stringify(submitted.rejected)}; best block #${startBlock} -> #${submitEndBlock}`);

  // Wait until the senders' nonces show every accepted transfer included, or the chain stops
  // including them for STALL_BLOCKS blocks.
  const target = nonces.reduce((a, n) => a + n, 0) + submitted.accepted;
  let lastProgress = { sum: -1, block: submitEndBlock };
  const waitDeadline = now() + MAX_WAIT_S;
  for (;;) {
    if (now() > waitDeadline) throw new Error(`the chain did not include the load within ${MAX_WAIT_S} s`);
    await sleep(Math.min(slotMs, 2000));
    const block = await bestNumber(api);
    const accounts = await api.query.system.account.multi(senders.map((s) => s.address));
    const sum = accounts.reduce((a, acc) => a + acc.nonce.toNumber(), 0);
    if (sum >= target) break;
    if (sum !== lastProgress.sum) lastProgress = { sum, block };
    else if (block - lastProgress.block >= STALL_BLOCKS) {
      const pending = (await api.rpc.author.pendingExtrinsics()).length;
      log(`no new transfer for ${STALL_BLOCKS} blocks; ${target - sum} accepted transfers were never included ` +
        `(the pool still lists ${pending} ready transactions)`);
      break;
    }
  }
  const endBlock = (await bestNumber(api)) + 0;
  await Promise.all(providers.map((p) => p.disconnect()));

  // Read back what the chain included, block by block.
  const blocks = [];
  for (let n = startBlock; n <= endBlock; n++) {
    const hash = await api.rpc.chain.getBlockHash(n);
    const [signed, at] = await Promise.all([api.rpc.chain.getBlock(hash), api.at(hash)]);
    const [timestamp, events, weight] = await Promise.all([
      at.query.timestamp.now(), at.query.system.events(), at.query.system.blockWeight()
    ]);
    let transfers = 0;
    let failed = 0;
    for (const { phase, event } of events) {
      if (!phase.isApplyExtrinsic) continue;
      if (api.events.balances.Transfer.is(event) && senderSet.has(event.data.from.toString())) transfers++;
      if (api.events.system.ExtrinsicFailed.is(event)) failed++;
    }
    const length = signed.block.extrinsics.reduce((a, x) => a + x.encodedLength, 0);
    blocks.push({
      number: n,
      timestamp: timestamp.toNumber(),
      transfers,
      failed,
      normalWeight: Number(weight.normal.refTime.toBigInt()) / Number(normalMax),
      mandatoryWeightMs: Number(weight.mandatory.refTime.toBigInt()) / 1e9,
      length: length / lengthMax
    });
  }

  console.log(`\n[${opts.label}] block  Δt(ms)  transfers  failed  normal-weight  length  mandatory(ms)`);
  for (let i = 1; i < blocks.length; i++) {
    const b = blocks[i];
    console.log(`[${opts.label}] ${String(b.number).padStart(5)}  ${String(b.timestamp - blocks[i - 1].timestamp).padStart(6)}  ` +
      `${String(b.transfers).padStart(9)}  ${String(b.failed).padStart(6)}  ${(b.normalWeight * 100).toFixed(1).padStart(12)}%  ` +
      `${(b.length * 100).toFixed(1).padStart(5)}%  ${b.mandatoryWeightMs.toFixed(3).padStart(12)}`);
  }

  // The steady window: the blocks between the first and the last that include transfers,
  // both excluded (the first starts while submission has barely begun, the last ends the
  // backlog). Its time is that of its blocks, from the timestamps of the chain.
  const withTransfers = blocks.filter((b) => b.transfers > 0);
  const included = withTransfers.reduce((a, b) => a + b.transfers, 0);
  const window = (from, to) => {
    const inside = blocks.filter((b) => b.number > from && b.number < to);
    const before = blocks.find((b) => b.number === from);
    const last = inside[inside.length - 1];
    if (inside.length === 0 || !before) return null;
    const transfers = inside.reduce((a, b) => a + b.transfers, 0);
    const seconds = (last.timestamp - before.timestamp) / 1000;
    return {
      blocks: inside.length,
      fromBlock: inside[0].number,
      toBlock: last.number,
      transfers,
      seconds,
      perSecond: transfers / seconds,
      perBlock: transfers / inside.length,
      meanNormalWeight: inside.reduce((a, b) => a + b.normalWeight, 0) / inside.length,
      // The normal-class weight a block spends per included transfer, extensions and all.
      weightPerTransferMs: inside.reduce((a, b) => a + b.normalWeight, 0) * Number(normalMax) / 1e9 / transfers,
      meanLength: inside.reduce((a, b) => a + b.length, 0) / inside.length
    };
  };
  const first = withTransfers[0]?.number;
  const last = withTransfers[withTransfers.length - 1]?.number;
  const steady = first !== undefined ? window(first, last) : null;
  // Blocks built after the last submission returned: the pool held the whole remaining
  // backlog, so only block production limited them.
  const backlog = first !== undefined ? window(Math.max(first, submitEndBlock + 1), last) : null;

  const summary = {
    label: opts.label,
    runtime,
    slotMs,
    senders: SENDERS,
    perSender: PER_SENDER,
    submitted: total,
    accepted: submitted.accepted,
    rejected: submitted.rejected,
    submitSeconds,
    submitRate: total / submitSeconds,
    included,
    transferWeightMs: Number(transferWeight) / 1e9,
    transferLength: transferLen,
    weightLimitPerBlock: Number(normalMax / transferWeight),
    lengthLimitPerBlock: Math.floor(lengthMax / transferLen),
    steady,
    backlog,
    blocks
  };
  const fmt = (w) => w
    ? `${w.perSecond.toFixed(1)} transfers/s, ${w.perBlock.toFixed(0)} per block over ${w.blocks} blocks ` +
      `(#${w.fromBlock}..#${w.toBlock}, ${w.seconds.toFixed(1)} s, mean normal weight ${(w.meanNormalWeight * 100).toFixed(1)}%, ` +
      `${w.weightPerTransferMs.toFixed(3)} ms per transfer, length ${(w.meanLength * 100).toFixed(1)}%)`
    : 'too few blocks';
  log(`included ${included} of ${submitted.accepted} accepted transfers`);
  log(`steady window: ${fmt(steady)}`);
  log(`backlog window (after submission ended): ${fmt(backlog)}`);
  if (opts.out) writeFileSync(opts.out, JSON.stringify(summary, null, 2));
  await api.disconnect();
}

main().then(() => process.exit(0), (err) => {
  console.error(`[${opts.label}] error:`, err);
  process.exit(1);
});
