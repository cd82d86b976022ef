// One subscription to new and finalized heads and to finalized events, shared by the views.
// Views register listeners while shown; a route change drops them.

import type { ApiPromise } from '@polkadot/api';
import type { EventRecord } from '@polkadot/types/interfaces';

type HeadsListener = (heads: { best: number; finalized: number }) => void;
type FinalizedListener = (block: number, events: EventRecord[]) => void;

interface Entry<T> { fn: T; permanent: boolean }

class Live {
  best = 0;
  finalized = 0;
  private heads: Entry<HeadsListener>[] = [];
  private blocks: Entry<FinalizedListener>[] = [];

  onHeads (fn: HeadsListener, permanent = false): void { this.heads.push({ fn, permanent }); }
  onFinalized (fn: FinalizedListener, permanent = false): void { this.blocks.push({ fn, permanent }); }

  resetViewListeners (): void {
    this.heads = this.heads.filter((e) => e.permanent);
    this.blocks = this.blocks.filter((e) => e.permanent);
  }

  async start (api: ApiPromise): Promise<void> {
    const notifyHeads = () => this.heads.forEach((e) => e.fn({ best: this.best, finalized: this.finalized }));
    await api.rpc.chain.subscribeNewHeads((header) => { this.best = header.number.toNumber(); notifyHeads(); });
    await api.rpc.chain.subscribeFinalizedHeads(async (header) => {
      const number = header.number.toNumber();
      this.finalized = number;
      notifyHeads();
      const events = await (await api.at(header.hash)).query.system.events();
      for (const e of [...this.blocks]) {
        try { e.fn(number, events as unknown as EventRecord[]); } catch (err) { console.warn(err); }
      }
    });
  }
}

export const live = new Live();
export const resetViewListeners = () => live.resetViewListeners();
