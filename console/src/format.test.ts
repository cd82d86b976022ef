import { describe, expect, it } from 'vitest';
import { billLines, formatBlocks, formatPermill, formatPerHour, formatPod, formatResources, parsePod, pricePerHour } from './format';

const POD = 10n ** 12n;

describe('balances', () => {
  it('prints POD with grouped digits and no trailing zeros', () => {
    expect(formatPod(0n)).toBe('0 POD');
    expect(formatPod(POD)).toBe('1 POD');
    expect(formatPod(1_000_000n * POD)).toBe('1,000,000 POD');
    expect(formatPod(POD + POD / 2n)).toBe('1.5 POD');
    expect(formatPod(-3n * POD)).toBe('-3 POD');
  });
  it('rounds at the shown precision and never shows a dust amount as zero', () => {
    expect(formatPod(123_456_789n)).toBe('0.0001 POD');
    expect(formatPod(99_999_999_999_999n)).toBe('100 POD');
    expect(formatPod(1n)).toBe('<0.0001 POD');
    expect(formatPod(1n, 12)).toBe('0.000000000001 POD');
  });
  it('parses what people type, and refuses the rest', () => {
    expect(parsePod('1.5')).toBe(POD + POD / 2n);
    expect(parsePod(' 10 POD ')).toBe(10n * POD);
    expect(parsePod('0.000000000001')).toBe(1n);
    expect(() => parsePod('1.0000000000001')).toThrow(/not an amount/);
    expect(() => parsePod('-1')).toThrow();
    expect(() => parsePod('1e3')).toThrow();
    expect(() => parsePod('')).toThrow();
  });
});

describe('prices', () => {
  const prices = { cpuPerMillicoreSecond: 1000n, memoryPerMibSecond: 100n, storagePerGibSecond: 10n, gpuPerSecond: 5n, egressPerByte: 1n };
  it('prices a workload per hour like the runtime quote', () => {
    const r = { cpuMillicores: 500, memoryMib: 512, storageGib: 1, gpus: 0 };
    expect(pricePerHour(prices, r)).toBe((1000n * 500n + 100n * 512n + 10n) * 3600n);
    expect(formatPerHour(pricePerHour(prices, r))).toBe('0.002 POD/h');
    expect(formatResources({ ...r, gpus: 2 })).toBe('500m CPU, 512 MiB, 1 GiB, 2 GPU');
  });
  it('prints permill and durations', () => {
    expect(formatPermill(995_000)).toBe('99.5%');
    expect(formatPermill(1_000_000)).toBe('100%');
    expect(formatBlocks(30, 1000)).toBe('30s');
    expect(formatBlocks(7500, 1000)).toBe('2h 5m');
    expect(formatBlocks(14400 * 2, 6000)).toBe('2d');
  });
});

describe('bills', () => {
  it('itemises charges largest first with shares of the total', () => {
    const lines = billLines({ cpu: 300n, memory: 600n, storage: 100n, gpu: 0n, egress: 0n });
    expect(lines.map((l) => l.resource)).toEqual(['memory', 'cpu', 'storage', 'gpu', 'egress']);
    expect(lines[0].percent).toBe(60);
    expect(lines[2].percent).toBe(10);
  });
  it('shows an empty bill as all zero', () => {
    expect(billLines({ cpu: 0n, memory: 0n, storage: 0n, gpu: 0n, egress: 0n }).every((l) => l.percent === 0)).toBe(true);
  });
});
