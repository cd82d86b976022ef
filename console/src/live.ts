// One subscription to new and finalized heads and to finalized events, shared by the views.
// Views register listeners while shown; a route change drops them.

import type { ApiPromise } from '@polkadot/api';
import type { ApiDecoration } from '@polkadot/api/types';
import type { EventRecord } from '@polkadot/types/interfaces';

type HeadsListener = (heads: { best: number; finalized: number }) => void;
type FinalizedListener = (block: number, events: EventRecord[]) => void;

interface Entry<T> { fn: T; permanent: boolean }

/** Most blocks read back when finality jumps (more are left to the history loader's lookback). */
const MAX_GAP = 64;

class Live {
  best = 0;
  finalized = 0;
  /** The chain as of the last finalized block: reads that must match `finalized` use it. */
  atFinalized?: ApiDecoration<'promise'>;
  private heads: Entry<HeadsListener>[] = [];
  private refreshers: (() => void)[] = [];
  private blocks: Entry<FinalizedListener>[] = [];
  /** Finalized blocks are handled one after another, in order. */
  private queue: Promise<void> = Promise.resolve();

  onHeads (fn: HeadsListener, permanent = false): void { this.heads.push({ fn, permanent }); }
  onFinalized (fn: FinalizedListener, permanent = false): void { this.blocks.push({ fn, permanent }); }

  /** Calls `fn` (the shown view's) when data other than a new block arrives (history read back). */
  onRefresh (fn: () => void): void { this.refreshers.push(fn); }
  refresh (): void { for (const fn of [...this.refreshers]) fn(); }

  resetViewListeners (): void {
    this.refreshers = [];
    this.heads = this.heads.filter((e) => e.permanent);
    this.blocks = this.blocks.filter((e) => e.permanent);
  }

  async start (api: ApiPromise): Promise<void> {
    const notifyHeads = () => this.heads.forEach((e) => e.fn({ best: this.best, finalized: this.finalized }));
    await api.rpc.chain.subscribeNewHeads((header) => { this.best = header.number.toNumber(); notifyHeads(); });
    let last = 0;
    const handle = async (number: number, hash: string) => {
      // Finality can jump several blocks at once: their events are read too, in order, so no
      // settlement or SLA event falls between two notifications.
      const first = last > 0 ? Math.max(last + 1, number - MAX_GAP) : number;
      const skipped = await Promise.all(Array.from({ length: number - first }, async (_, i) => {
        const at = await api.at(await api.rpc.chain.getBlockHash(first + i));
        return { number: first + i, events: await at.query.system.events() as unknown as EventRecord[] };
      }));
      const at = await api.at(hash);
      const events = await at.query.system.events() as unknown as EventRecord[];
      last = number;
      this.finalized = number;
      this.atFinalized = at;
      notifyHeads();
      for (const block of [...skipped, { number, events }]) {
        for (const e of [...this.blocks]) {
          try { e.fn(block.number, block.events); } catch (err) { console.warn(err); }
        }
      }
    };
    await new Promise<void>((ready) => {
      void api.rpc.chain.subscribeFinalizedHeads((header) => {
        const number = header.number.toNumber();
        const hash = header.hash.toHex();
        this.queue = this.queue
          .then(() => (number > last ? handle(number, hash) : undefined))
          .catch((err) => console.warn(err))
          .finally(ready);
      });
    });
  }
}

export const live = new Live();
export const resetViewListeners = () => live.resetViewListeners();
