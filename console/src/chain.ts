// The connection to the node, the accounts that sign, and what failures mean.

import { ApiPromise, WsProvider } from '@polkadot/api';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import type { DispatchError, EventRecord } from '@polkadot/types/interfaces';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';

export interface Account { address: string; name: string; source: 'dev' | 'extension' }

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';

/**
 * The local API's token: in the URL `podchain console` prints (`?token=`), then kept in this
 * tab's session storage and dropped from the address bar (so it is not bookmarked or shared).
 * Empty as a static site, or when opened without it.
 */
export const localToken = (() => {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given && /^[0-9a-f]{64}$/.test(given)) {
    sessionStorage.setItem('podchain-token', given);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.toString());
  }
  return sessionStorage.getItem('podchain-token') ?? '';
})();

/** The node: `?rpc=` in the URL, else the one `podchain console` was given, else the default. */
export const rpcUrl = new URLSearchParams(location.search).get('rpc') || meta('podchain-rpc') || 'ws://127.0.0.1:9944';

export let api: ApiPromise;
/** The node connection itself: raw calls through it are not logged as errors when they fail. */
export let wsProvider: WsProvider;
export let accounts: Account[] = [];
let devPairs = new Map<string, KeyringPair>();
let extensionSigner: ((address: string) => Promise<unknown>) | undefined;

/** Connects; on development chains, offers the well-known dev accounts. */
export async function connect (): Promise<ApiPromise> {
  wsProvider = new WsProvider(rpcUrl);
  api = await ApiPromise.create({ provider: wsProvider, noInitWarn: true });
  const chainType = await api.rpc.system.chainType();
  if (chainType.isDevelopment || chainType.isLocal) {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519', ss58Format: api.registry.chainSS58 ?? 42 });
    for (const name of ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie']) {
      const pair = keyring.addFromUri(`//${name}`, { name });
      devPairs.set(pair.address, pair);
      accounts.push({ address: pair.address, name: `${name} (dev)`, source: 'dev' });
    }
  }
  return api;
}

/** Accounts of the polkadot.js browser extension, if one is installed and the user allows it. */
export async function loadExtensionAccounts (): Promise<void> {
  const win = window as unknown as { injectedWeb3?: Record<string, unknown> };
  if (!win.injectedWeb3 || Object.keys(win.injectedWeb3).length === 0) return;
  const { web3Enable, web3Accounts, web3FromAddress } = await import('@polkadot/extension-dapp');
  const extensions = await web3Enable('podchain console');
  if (extensions.length === 0) return;
  for (const a of await web3Accounts()) {
    accounts.push({ address: a.address, name: a.meta.name ?? a.address, source: 'extension' });
  }
  extensionSigner = async (address) => (await web3FromAddress(address)).signer;
}

/** The chain's named error with its docs, for a dispatch error. */
export function describeDispatchError (error: DispatchError): string {
  if (error.isModule) {
    const { section, name, docs } = api.registry.findMetaError(error.asModule);
    return `${section}.${name}${docs.length ? `: ${docs.join(' ').trim()}` : ''}`;
  }
  if (error.isToken) return `token.${error.asToken.type}`;
  if (error.isArithmetic) return `arithmetic.${error.asArithmetic.type}`;
  return error.type;
}

/** What the user is asked to sign: `section.method(args)` in readable form. */
export function describeCall (tx: SubmittableExtrinsic<'promise'>): string {
  const { section, method, args } = tx.method.toHuman() as { section: string; method: string; args: Record<string, unknown> };
  return `${section}.${method}(${JSON.stringify(args, null, 2)})`;
}

/** Asks the user to confirm `tx` as `signer`; resolves with their answer. */
function confirmSigning (tx: SubmittableExtrinsic<'promise'>, signer: string): Promise<boolean> {
  const dialog = document.getElementById('confirm') as HTMLDialogElement;
  document.getElementById('confirm-signer')!.textContent = signer;
  document.getElementById('confirm-call')!.textContent = describeCall(tx);
  dialog.returnValue = '';
  dialog.showModal();
  (document.getElementById('confirm-sign') as HTMLButtonElement).focus();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'sign'), { once: true }));
}

export class ChainError extends Error {}

export type Stage = 'signed' | 'in block' | 'finalized';

/**
 * Shows the call, and once the user confirms, signs and submits it as `address`; resolves with
 * its events and the number of its block once finalized, rejects with the chain's named error.
 */
export async function submit (tx: SubmittableExtrinsic<'promise'>, address: string, onStage?: (stage: Stage) => void): Promise<{ events: EventRecord[]; block: number }> {
  if (!(await confirmSigning(tx, address))) throw new ChainError('cancelled: nothing was signed');
  const pair = devPairs.get(address);
  const signer = pair ? undefined : await extensionSigner?.(address);
  if (!pair && !signer) throw new ChainError(`no key for ${address}: use the browser extension or a dev account`);
  return new Promise((resolve, reject) => {
    const sent = pair
      ? tx.signAndSend(pair, handler)
      : tx.signAndSend(address, { signer: signer as never }, handler);
    sent.catch((e: Error) => reject(new ChainError(e.message)));
    onStage?.('signed');
    function handler ({ status, events, dispatchError }: { status: any; events: EventRecord[]; dispatchError?: DispatchError }) {
      if (dispatchError) {
        reject(new ChainError(describeDispatchError(dispatchError)));
      } else if (status.isInBlock) {
        onStage?.('in block');
      } else if (status.isFinalized) {
        onStage?.('finalized');
        api.rpc.chain.getHeader(status.asFinalized)
          .then((header) => resolve({ events, block: header.number.toNumber() }), reject);
      } else if (status.isInvalid || status.isDropped || status.isUsurped) {
        reject(new ChainError(`transaction ${status.type}`));
      }
    }
  });
}

/** Milliseconds per block, from the chain's constants. */
export function msPerBlock (): number {
  const c = api.consts as any;
  const period = c.aura?.slotDuration ?? c.timestamp?.minimumPeriod?.muln?.(2);
  return period ? Number(period.toString()) : 6000;
}
