// Writes the development chain spec of the reference runtime (scripts/throughput.sh):
//   node chain-spec.mjs <runtime.wasm> <out.json>
// Alice authors blocks (Aura), finalizes (GRANDPA) and is root; the well-known dev accounts
// are endowed with 2^60 units each, the way podchain's development preset endows them.

import { Keyring } from '@polkadot/keyring';
import { u8aToHex } from '@polkadot/util';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, outPath] = process.argv.slice(2);
if (!wasmPath || !outPath) {
  console.error('usage: node chain-spec.mjs <runtime.wasm> <out.json>');
  process.exit(2);
}
await cryptoWaitReady();
const sr = new Keyring({ type: 'sr25519', ss58Format: 42 });
const ed = new Keyring({ type: 'ed25519', ss58Format: 42 });
const dev = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'];
const alice = sr.addFromUri('//Alice').address;
// A JSON integer below 2^64: the node parses the genesis patch without arbitrary precision.
const endowment = 2n ** 60n;

const spec = {
  name: 'podchain reference development',
  id: 'podchain_reference_dev',
  chainType: 'Development',
  bootNodes: [],
  telemetryEndpoints: null,
  protocolId: null,
  properties: { tokenSymbol: 'UNIT', tokenDecimals: 12, ss58Format: 42 },
  codeSubstitutes: {},
  genesis: {
    runtimeGenesis: {
      code: u8aToHex(readFileSync(wasmPath)),
      patch: {
        balances: { balances: dev.map((n) => [sr.addFromUri(`//${n}`).address, '@ENDOWMENT@']) },
        aura: { authorities: [alice] },
        grandpa: { authorities: [[ed.addFromUri('//Alice').address, 1]] },
        sudo: { key: alice }
      }
    }
  }
};
writeFileSync(outPath, JSON.stringify(spec, null, 2).replaceAll('"@ENDOWMENT@"', endowment.toString()));
console.log(`wrote ${outPath}`);
