// Four validators from the `local_testnet` preset on loopback: they produce and finalize blocks;
// with one stopped, the other three keep finalizing (GRANDPA needs more than two thirds); the
// stopped one restarts from its database and catches up.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { PodchainNode, blockNumber, rpc, waitFor } from '../lib/node.mjs';

const VALIDATORS = ['alice', 'bob', 'charlie', 'dave'];
// Fixed libp2p keys: a restarted validator keeps its peer id, as on a real network.
const nodeKey = (i) => (i + 1).toString(16).padStart(64, '0');
const validatorArgs = (i) => ['--chain', 'local', `--${VALIDATORS[i]}`, '--node-key', nodeKey(i)];
// 6 s blocks: allow generous time for each phase, but fail rather than hang.
const PHASE_TIMEOUT_MS = 120_000;

const nodes = [];

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

async function finalizedEverywhere (running) {
  return Promise.all(running.map((n) => blockNumber(n.rpcPort, 'finalized')));
}

test('four validators finalize, survive one stopping, and the stopped one catches up', { timeout: 600_000 }, async (t) => {
  // Registered before starting, so `after` stops whatever did start if a start fails.
  const start = (i, extra = []) => {
    const node = new PodchainNode({ name: VALIDATORS[i], args: [...validatorArgs(i), ...extra] });
    nodes.push(node);
    return node.start();
  };
  const bootnode = await (await start(0)).multiaddr();
  for (let i = 1; i < VALIDATORS.length; i++) await start(i, ['--bootnodes', bootnode]);
  const [alice, , , dave] = nodes;

  try {
    await waitFor('every node to have 3 peers', async () => {
      const health = await Promise.all(nodes.map((n) => rpc(n.rpcPort, 'system_health')));
      return health.every((h) => h.peers >= 3);
    }, { timeoutMs: PHASE_TIMEOUT_MS });

    const initial = await waitFor('all four nodes to finalize block 3', async () => {
      const finalized = await finalizedEverywhere(nodes);
      return finalized.every((n) => n >= 3) && finalized;
    }, { timeoutMs: PHASE_TIMEOUT_MS });
    t.diagnostic(`finalized with four validators: ${initial.join(', ')}`);

    await dave.stop();
    const atStop = await blockNumber(alice.rpcPort, 'finalized');
    const running = nodes.slice(0, 3);
    const withThree = await waitFor('three validators to finalize 5 more blocks', async () => {
      const finalized = await finalizedEverywhere(running);
      return finalized.every((n) => n >= atStop + 5) && finalized;
    }, { timeoutMs: PHASE_TIMEOUT_MS });
    t.diagnostic(`finalized with dave stopped: ${withThree.join(', ')} (was ${atStop})`);

    await dave.start();
    const target = await blockNumber(alice.rpcPort, 'finalized');
    const caughtUp = await waitFor(`dave to import and finalize block ${target}`, async () => {
      const [best, finalized] = [await blockNumber(dave.rpcPort), await blockNumber(dave.rpcPort, 'finalized')];
      return finalized >= target && { best, finalized };
    }, { timeoutMs: PHASE_TIMEOUT_MS });
    t.diagnostic(`dave caught up: best ${caughtUp.best}, finalized ${caughtUp.finalized} (target ${target})`);

    const afterRestart = await blockNumber(alice.rpcPort, 'finalized');
    await waitFor('finality to go on with all four', async () => {
      const finalized = await finalizedEverywhere(nodes);
      return finalized.every((n) => n > afterRestart);
    }, { timeoutMs: PHASE_TIMEOUT_MS });
  } catch (err) {
    err.message += '\n' + nodes.map((n) => n.describe()).join('\n');
    throw err;
  }
});
