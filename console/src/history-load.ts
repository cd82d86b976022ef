// Reads the events of past finalized blocks into the console's history, in bounded parallel
// batches walking back from the finalized head, so the charts and the SLA log start before the
// page was opened. Live blocks go into the same history; a block is folded once.

import type { ApiPromise } from '@polkadot/api';
import type { EventRecord } from '@polkadot/types/interfaces';
import { wsProvider } from './chain';
import { ChainHistory, type ChainEvent } from './history';

/** Blocks read back by default; `?history=N` in the URL changes it (0: none). */
export const DEFAULT_LOOKBACK = 600;
/** Blocks whose events are read at once. */
const BATCH = 48;

export const chainHistory = new ChainHistory();

export interface HistoryStatus {
  /** Reading back is under way. */
  loading: boolean;
  /** The first block the history covers, once known. */
  from?: number;
  /** The node no longer holds the state of the blocks before `from`. */
  pruned: boolean;
  /** Why reading back stopped early, when not for pruning. */
  error?: string;
  /** Blocks read and how long it took. */
  blocks: number;
  ms: number;
}

export const historyStatus: HistoryStatus = { loading: false, pruned: false, blocks: 0, ms: 0 };
const listeners = new Set<() => void>();

/** Calls `fn` when more history arrives; returns the function that stops it. */
export function onHistory (fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** How many blocks to read back: `?history=N` (bounded), else the default. */
export function lookback (search = location.search): number {
  const given = new URLSearchParams(search).get('history');
  if (given === null || !/^\d+$/.test(given)) return DEFAULT_LOOKBACK;
  return Math.min(Number(given), 100_000);
}

/** A record's event with its fields by name, as plain values. */
export function normalize (records: EventRecord[]): ChainEvent[] {
  return records.map(({ event }) => {
    const names = (event.data as unknown as { names: string[] | null }).names ?? [];
    const data: Record<string, unknown> = {};
    names.forEach((name, i) => { data[name] = (event.data[i] as any).toPrimitive(); });
    return { section: event.section, method: event.method, data, text: JSON.stringify(event.data.toHuman()) };
  });
}

/** The state of this block was discarded by the node (it keeps the last 256 by default). */
const isPruned = (err: unknown) => /discard|prun|not found|unknown block|no state/i.test(String((err as Error)?.message ?? err));

/** A block's raw `System.Events` value, decoded with the current metadata. */
function decodeEvents (api: ApiPromise, raw: string | null) {
  const type = api.registry.createLookupType(api.query.system.events.creator.meta.type.asPlain);
  return api.registry.createType(type, raw ?? '0x00');
}

/** The runtime's spec version at block `hash`; undefined when the node discarded its state. */
async function runtimeVersionAt (hash: string): Promise<number | undefined> {
  try {
    return Number((await wsProvider.send<{ specVersion: number }>('state_getRuntimeVersion', [hash])).specVersion);
  } catch (err) {
    if (isPruned(err)) return undefined;
    throw err;
  }
}

/** What the charts say about how far back they reach. */
export function historyNote (): string {
  const s = historyStatus;
  if (s.from === undefined) return s.loading ? 'reading history…' : 'since the console opened';
  if (s.loading) return `reading history, since block ${s.from} so far…`;
  if (s.pruned) return `history since block ${s.from} (older state pruned by the node)`;
  if (s.error) return `history since block ${s.from} (older blocks unreadable: ${s.error})`;
  return `since block ${s.from}`;
}

/**
 * Reads the events of the `count` blocks up to `head` (finalized) back into `chainHistory`,
 * newest first, stopping at the first block whose state the node pruned. Listeners hear of
 * every batch.
 */
export async function loadHistory (api: ApiPromise, head: number, count = lookback()): Promise<void> {
  const started = performance.now();
  const lowest = Math.max(1, head - count + 1);
  historyStatus.loading = true;
  const notify = () => listeners.forEach((fn) => { try { fn(); } catch (err) { console.warn(err); } });
  try {
    for (let top = head; top >= lowest; top -= BATCH) {
      const numbers = Array.from({ length: Math.min(BATCH, top - lowest + 1) }, (_, i) => top - i);
      const below = numbers.at(-1)! - 1;
      const [belowHash, ...hashes] = await Promise.all([below, ...numbers].map((n) => api.rpc.chain.getBlockHash(n)));
      // A block is read with the runtime that ran it, its parent's. When the node still holds
      // the state before the batch's oldest block, it holds the whole batch's (pruning keeps the
      // newest), and when that runtime is the current one, every block of the batch ran on it:
      // decoded with the current metadata, no look-up per block. Otherwise each block's parent
      // is checked. These raw calls fail without logging errors.
      const current = api.runtimeVersion.specVersion.toNumber();
      const parents = [...hashes.slice(1), belowHash].map((h) => h.toHex());
      const belowVersion = await runtimeVersionAt(parents.at(-1)!);
      const versions = belowVersion === current
        ? parents.map(() => current)
        : await Promise.all(parents.map((h) => runtimeVersionAt(h)));
      const read = await Promise.all(numbers.map(async (number, i) => {
        if (versions[i] === undefined) return { number, err: new Error('state discarded') };
        try {
          const events = versions[i] === current
            ? decodeEvents(api, await wsProvider.send<string | null>('state_getStorage', [api.query.system.events.key(), hashes[i].toHex()]))
            : await api.query.system.events.at(hashes[i]);
          return { number, events: events as unknown as EventRecord[] };
        } catch (err) {
          return { number, err };
        }
      }));
      // Fold from the top down, up to the first block that could not be read.
      let stopped: unknown;
      for (const r of read) {
        if ('err' in r) { stopped = r.err; break; }
        chainHistory.fold(r.number, normalize(r.events));
        historyStatus.blocks++;
      }
      historyStatus.from = chainHistory.coveredFrom(head);
      if (stopped !== undefined) {
        if (isPruned(stopped)) historyStatus.pruned = true;
        else historyStatus.error = String((stopped as Error)?.message ?? stopped);
        break;
      }
      notify();
    }
  } catch (err) {
    historyStatus.error = String((err as Error)?.message ?? err);
  } finally {
    historyStatus.loading = false;
    historyStatus.ms = Math.round(performance.now() - started);
    (window as any).podchainHistory = { ...historyStatus };
    notify();
  }
}
