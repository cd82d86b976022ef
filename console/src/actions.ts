// When the chain allows a deal's actions: the console offers an action only then, and says why
// not otherwise, rather than a button the chain refuses.

/** A deal's state, as far as cancelling goes. */
export type CancelState = { pending: false } | { pending: true; createdAt: number };

export interface Availability { available: boolean; reason: string; from?: number }

/**
 * Whether the publisher can cancel now: only a pending deal (its provider did not accept it),
 * once `timeout` blocks (the market's acceptance timeout) passed since its creation. A
 * transaction sent now lands in the block after `best` at the earliest.
 */
export function cancelAvailability (state: CancelState, timeout: number, best: number): Availability {
  if (!state.pending) return { available: false, reason: 'only a deal its provider has not accepted can be cancelled' };
  const from = state.createdAt + timeout;
  if (best + 1 >= from) return { available: true, reason: `the provider did not accept it within ${timeout} blocks`, from };
  return { available: false, reason: `cancellable from block ${from} if the provider has not accepted it by then (now #${best})`, from };
}
