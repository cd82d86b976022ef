import { describe, expect, it } from 'vitest';
import { cancelAvailability } from './actions';

describe('cancelAvailability', () => {
  it('refuses a deal that is not pending, whatever the block', () => {
    expect(cancelAvailability({ pending: false }, 100, 1_000_000)).toMatchObject({ available: false });
  });
  it('waits for the acceptance timeout and names the block', () => {
    const early = cancelAvailability({ pending: true, createdAt: 50 }, 100, 120);
    expect(early.available).toBe(false);
    expect(early.from).toBe(150);
    expect(early.reason).toMatch(/cancellable from block 150/);
  });
  it('allows it once the next block reaches creation + timeout (the chain checks now >= created + timeout)', () => {
    // A transaction sent at best 148 lands in 149 at the earliest: too soon.
    expect(cancelAvailability({ pending: true, createdAt: 50 }, 100, 148).available).toBe(false);
    expect(cancelAvailability({ pending: true, createdAt: 50 }, 100, 149).available).toBe(true);
    expect(cancelAvailability({ pending: true, createdAt: 50 }, 100, 5000).available).toBe(true);
  });
});
