import { describe, expect, it } from 'vitest';
import { serialized } from './dom';

describe('serialized', () => {
  it('never runs twice at once, and runs once more for calls made meanwhile', async () => {
    let active = 0, most = 0, runs = 0;
    let release!: () => void;
    const render = serialized(async () => {
      active++; runs++; most = Math.max(most, active);
      await new Promise<void>((resolve) => { release = resolve; setTimeout(resolve, 5); });
      active--;
    });
    const calls = [render(), render(), render()];
    release();
    await Promise.all(calls);
    expect(most).toBe(1);
    // The first run, then one more for the two calls made while it ran.
    expect(runs).toBe(2);
    await render();
    expect(runs).toBe(3);
  });
});
