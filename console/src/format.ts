// Formatting of balances, prices and bills, the way the CLI prints them (1 POD = 10^12 planck).

export const DECIMALS = 12n;
export const PLANCK_PER_POD = 10n ** DECIMALS;

/** `planck` as POD with up to `digits` decimals, trailing zeros dropped: `1.5 POD`. */
export function formatPod (planck: bigint, digits = 4): string {
  const negative = planck < 0n;
  const abs = negative ? -planck : planck;
  const whole = abs / PLANCK_PER_POD;
  const scale = 10n ** BigInt(digits);
  // Round half up at the shown precision.
  let frac = ((abs % PLANCK_PER_POD) * scale * 2n + PLANCK_PER_POD) / (PLANCK_PER_POD * 2n);
  let wholePart = whole;
  if (frac >= scale) { wholePart += 1n; frac -= scale; }
  const grouped = wholePart.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  let fracText = digits > 0 ? frac.toString().padStart(digits, '0').replace(/0+$/, '') : '';
  if (fracText === '' && wholePart === 0n && abs > 0n) {
    return `${negative ? '-' : ''}<${digits > 0 ? `0.${'0'.repeat(digits - 1)}1` : '1'} POD`;
  }
  return `${negative ? '-' : ''}${grouped}${fracText ? `.${fracText}` : ''} POD`;
}

/** POD typed by a person (`1.5`, `10`, `0.000001`) as planck; throws on anything else. */
export function parsePod (text: string): bigint {
  const trimmed = text.trim().replace(/\s*POD$/i, '').replace(/_/g, '');
  const match = /^(\d+)(?:\.(\d{1,12}))?$/.exec(trimmed);
  if (!match) throw new Error(`"${text}" is not an amount of POD (e.g. 1.5)`);
  return BigInt(match[1]) * PLANCK_PER_POD + BigInt((match[2] ?? '').padEnd(12, '0') || '0');
}

/** A price per hour: `0.36 POD/h`. */
export function formatPerHour (planckPerHour: bigint): string {
  return `${formatPod(planckPerHour)}/h`;
}

export interface Resources { cpuMillicores: number; memoryMib: number; storageGib: number; gpus: number }
export interface Prices {
  cpuPerMillicoreSecond: bigint; memoryPerMibSecond: bigint; storagePerGibSecond: bigint;
  gpuPerSecond: bigint; egressPerByte: bigint;
}
export interface Charges { cpu: bigint; memory: bigint; storage: bigint; gpu: bigint; egress: bigint }

export const RESOURCES: (keyof Charges)[] = ['cpu', 'memory', 'storage', 'gpu', 'egress'];

/** What `resources` cost per hour at `prices` (egress is billed per byte, not here). */
export function pricePerHour (prices: Prices, r: Resources): bigint {
  return (prices.cpuPerMillicoreSecond * BigInt(r.cpuMillicores) +
    prices.memoryPerMibSecond * BigInt(r.memoryMib) +
    prices.storagePerGibSecond * BigInt(r.storageGib) +
    prices.gpuPerSecond * BigInt(r.gpus)) * 3600n;
}

/** `500m CPU, 512 MiB, 1 GiB` (and GPUs when any). */
export function formatResources (r: Resources): string {
  const parts = [`${r.cpuMillicores}m CPU`, `${r.memoryMib} MiB`, `${r.storageGib} GiB`];
  if (r.gpus > 0) parts.push(`${r.gpus} GPU`);
  return parts.join(', ');
}

/** The bill's lines, largest first, with each line's share of the total in percent. */
export function billLines (charged: Charges): { resource: keyof Charges; amount: bigint; percent: number }[] {
  const total = RESOURCES.reduce((sum, r) => sum + charged[r], 0n);
  return RESOURCES
    .map((resource) => ({
      resource,
      amount: charged[resource],
      percent: total === 0n ? 0 : Number((charged[resource] * 10000n) / total) / 100
    }))
    .sort((a, b) => (a.amount === b.amount ? 0 : a.amount > b.amount ? -1 : 1));
}

/** Blocks as a duration at `msPerBlock`: `2h 5m`, `45s`. */
export function formatBlocks (blocks: number, msPerBlock: number): string {
  let s = Math.round((blocks * msPerBlock) / 1000);
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : ''].filter(Boolean).join(' ');
}

/** A Permill as a percentage: `99.5%`. */
export function formatPermill (parts: number): string {
  return `${(parts / 10000).toFixed(2).replace(/\.?0+$/, '')}%`;
}

/** `AB12…xy89`. */
export function shortAddress (address: string): string {
  return address.length > 14 ? `${address.slice(0, 6)}…${address.slice(-6)}` : address;
}
