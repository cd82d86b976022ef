import { describe, expect, it } from 'vitest';
import { ChainHistory, toBig, type ChainEvent } from './history';

const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const CHARLIE = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';

const settled = (id: number, cpu: number, memory = 0): ChainEvent => ({
  section: 'market', method: 'Settled',
  data: { id, periodStart: 0, periodEnd: 0, charges: { cpu, memory, storage: 0, gpu: 0, egress: 0 }, total: cpu + memory, fee: 0, unpaid: 0 }
});
const created = (id: number, publisher: string, provider: string): ChainEvent => ({
  section: 'market', method: 'DeploymentCreated', data: { id, publisher, provider, deposit: 10 }
});
const charges = (cpu: number, memory = 0) => ({ cpu: BigInt(cpu), memory: BigInt(memory), storage: 0n, gpu: 0n, egress: 0n });
const anchor = (block: number, cpu: number, memory = 0) => ({ block, charged: charges(cpu, memory), total: BigInt(cpu + memory) });

/** Folds blocks `from..to`, with `events[block]` where given. */
function foldRange (history: ChainHistory, from: number, to: number, events: Record<number, ChainEvent[]> = {}) {
  for (let b = from; b <= to; b++) history.fold(b, events[b] ?? []);
}

describe('ChainHistory.billSeries', () => {
  it('counts a deal\'s bill back from its current bill through its settlements, as steps', () => {
    const history = new ChainHistory();
    foldRange(history, 5, 20, { 10: [settled(1, 100, 5)], 12: [settled(2, 999)], 15: [settled(1, 50)] });
    const points = history.billSeries(1, anchor(20, 1150, 5));
    expect(points.map((p) => [p.block, p.total])).toEqual([
      [5, 1000n], [9, 1000n], [10, 1105n], [14, 1105n], [15, 1155n], [20, 1155n]
    ]);
    expect(points[0].charged).toEqual(charges(1000, 0));
    expect(points[2].charged).toEqual(charges(1100, 5));
  });

  it('ignores the settlements of other deals', () => {
    const history = new ChainHistory();
    foldRange(history, 1, 10, { 4: [settled(7, 300)], 6: [settled(8, 1)] });
    const points = history.billSeries(9, anchor(10, 40));
    expect(points.map((p) => [p.block, p.total])).toEqual([[1, 40n], [10, 40n]]);
  });

  it('counts a block brought by both history and live once', () => {
    const once = new ChainHistory();
    foldRange(once, 1, 10, { 6: [settled(1, 30)] });
    const twice = new ChainHistory();
    // History reads 1..8 back, live had 6..10 already: 6, 7 and 8 arrive twice.
    foldRange(twice, 6, 10, { 6: [settled(1, 30)] });
    for (let b = 8; b >= 1; b--) expect(twice.fold(b, b === 6 ? [settled(1, 30)] : [])).toBe(b < 6);
    expect(twice.billSeries(1, anchor(10, 100))).toEqual(once.billSeries(1, anchor(10, 100)));
    expect(twice.billSeries(1, anchor(10, 100))[0].total).toBe(70n);
  });

  it('reaches back only over unbroken blocks: a gap stops the series', () => {
    const history = new ChainHistory();
    foldRange(history, 1, 5, { 3: [settled(1, 10)] });
    foldRange(history, 8, 12, { 9: [settled(1, 20)] });
    expect(history.coveredFrom(12)).toBe(8);
    const points = history.billSeries(1, anchor(12, 100));
    expect(points[0]).toMatchObject({ block: 8, total: 80n });
    expect(points.some((p) => p.block < 8)).toBe(false);
  });

  it('is the anchor alone when the anchor\'s block was not folded', () => {
    const history = new ChainHistory();
    foldRange(history, 1, 5);
    expect(history.billSeries(1, anchor(9, 10))).toEqual([anchor(9, 10)]);
  });

  it('adds settlements of the same deal in the same block', () => {
    const history = new ChainHistory();
    foldRange(history, 1, 4, { 3: [settled(1, 10), settled(1, 5)] });
    expect(history.billSeries(1, anchor(4, 20)).map((p) => [p.block, p.total])).toEqual([[1, 5n], [2, 5n], [3, 20n], [4, 20n]]);
  });
});

describe('ChainHistory.forget', () => {
  it('drops the blocks before a block: the series then start there', () => {
    const history = new ChainHistory();
    foldRange(history, 1, 20, { 5: [settled(1, 10)], 15: [settled(1, 20)] });
    history.fold(6, []);
    history.forget(10);
    expect(history.has(9)).toBe(false);
    expect(history.has(10)).toBe(true);
    expect(history.billSeries(1, anchor(20, 30)).map((p) => [p.block, p.total])).toEqual([[10, 10n], [14, 10n], [15, 30n], [20, 30n]]);
    // A block forgotten may come again (it is folded anew), without counting twice.
    expect(history.fold(5, [settled(1, 10)])).toBe(true);
    expect(history.coveredFrom(20)).toBe(10);
  });
});

describe('ChainHistory.totalSeries', () => {
  it('sums the bills of a provider\'s deals by block', () => {
    const history = new ChainHistory();
    foldRange(history, 1, 10, { 3: [settled(1, 10)], 7: [settled(2, 4)], 8: [settled(3, 1000)] });
    const series = history.totalSeries(new Map([[1, anchor(10, 30)], [2, anchor(10, 8)]]));
    expect(series).toEqual([[1, 24], [2, 24], [3, 34], [6, 34], [7, 38], [10, 38]]);
  });
});

describe('ChainHistory.slaLog', () => {
  it('keeps the provider\'s events and those of its deals, newest first, each block once', () => {
    const history = new ChainHistory();
    const window = (provider: string): ChainEvent => ({ section: 'sla', method: 'WindowDecided', data: { provider, window: 3, outcome: 'Up' } });
    const missed = (deal: number): ChainEvent => ({ section: 'sla', method: 'SlaMissed', data: { deal, window: 1, uptime: 0, penalty: 5 } });
    const slashed: ChainEvent = { section: 'providerStaking', method: 'Slashed', data: { who: BOB, amount: 5 } };
    history.fold(2, [created(4, ALICE, BOB), created(5, ALICE, CHARLIE)]);
    history.fold(3, [window(BOB), window(CHARLIE)]);
    history.fold(5, [missed(4), missed(5), missed(6), slashed]);
    expect(history.fold(5, [missed(4)])).toBe(false);
    const log = history.slaLog(BOB, [6]);
    expect(log.map((e) => [e.block, e.text.split(' ')[0]])).toEqual([
      [5, 'sla.SlaMissed'], [5, 'sla.SlaMissed'], [5, 'providerStaking.Slashed'], [3, 'sla.WindowDecided']
    ]);
    expect(log.filter((e) => e.text.includes(CHARLIE))).toEqual([]);
    expect(log.some((e) => e.text.includes('"deal":5'))).toBe(false);
    // Market events are not SLA events.
    expect(history.slaLog(ALICE, [])).toEqual([]);
  });
});

describe('toBig', () => {
  it('reads numbers, decimal and hex strings; anything else is 0', () => {
    expect(toBig(12)).toBe(12n);
    expect(toBig('340282366920938463463374607431768211455')).toBe(2n ** 128n - 1n);
    expect(toBig('0x10')).toBe(16n);
    expect(toBig(1.5)).toBe(0n);
    expect(toBig(null)).toBe(0n);
    expect(toBig('-3')).toBe(0n);
  });
});
