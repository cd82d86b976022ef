// Shared by the examples: connect, sign, wait for finality, report the chain's error by name.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

export const POD = 1_000_000_000_000n;

/** Connects to `PODCHAIN_RPC` (default the local dev node). */
export async function connect () {
  const url = process.env.PODCHAIN_RPC || 'ws://127.0.0.1:9944';
  return ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
}

/** The sr25519 key pair of a secret URI or phrase (`//Alice` on a dev chain). */
export async function signer (secret) {
  await cryptoWaitReady();
  return new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri(secret);
}

/** Submits `tx` signed by `pair`; resolves with the events once finalized. */
export function submit (api, tx, pair) {
  return new Promise((resolve, reject) => {
    tx.signAndSend(pair, ({ status, events, dispatchError }) => {
      if (dispatchError) {
        const detail = dispatchError.isModule
          ? (({ section, name, docs }) => `${section}.${name}: ${docs.join(' ')}`)(api.registry.findMetaError(dispatchError.asModule))
          : dispatchError.toString();
        reject(new Error(detail));
      } else if (status.isFinalized) {
        resolve(events.map(({ event }) => event));
      } else if (status.isInvalid || status.isDropped || status.isUsurped) {
        reject(new Error(`transaction ${status.type}`));
      }
    }).catch(reject);
  });
}

/** Runs `main`, printing its result as JSON; exits non-zero with the error otherwise. */
export function run (main) {
  main().then((result) => {
    console.log(JSON.stringify(result, (_, v) => typeof v === 'bigint' ? v.toString() : v, 2));
    process.exit(0);
  }, (err) => {
    console.error(`error: ${err.message}`);
    process.exit(1);
  });
}
