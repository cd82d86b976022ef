// What the charts and the SLA log show, folded from finalized blocks' events: the ones read back
// from the chain when the console opens, and the live ones after. Pure: events in, series out.
// A block is folded once, whichever path brings it first, so history and live never count a
// block twice.

import { RESOURCES, type Charges } from './format';

/** An event with its fields by name (`periodEnd`, `charges`), values as plain JSON primitives. */
export interface ChainEvent { section: string; method: string; data: Record<string, unknown>; text?: string }

/** A deal's bill after a block: charged per resource and in all. */
export interface BillPoint { block: number; charged: Charges; total: bigint }

/** A line in the provider's SLA log. */
export interface SlaEntry { block: number; text: string }

/** Sections whose events concern a provider's SLA standing and stake. */
const SLA_SECTIONS = new Set(['sla', 'providerStaking', 'storageProofs']);

const ZERO: Charges = { cpu: 0n, memory: 0n, storage: 0n, gpu: 0n, egress: 0n };

/** A chain integer (number, decimal or hex string) as a bigint; 0 for anything else. */
export function toBig (value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^(\d+|0x[0-9a-fA-F]+)$/.test(value)) return BigInt(value);
  return 0n;
}

function chargesOf (value: unknown): Charges {
  const c = (value ?? {}) as Record<string, unknown>;
  return { cpu: toBig(c.cpu), memory: toBig(c.memory), storage: toBig(c.storage), gpu: toBig(c.gpu), egress: toBig(c.egress) };
}

const sub = (a: Charges, b: Charges): Charges => ({ cpu: a.cpu - b.cpu, memory: a.memory - b.memory, storage: a.storage - b.storage, gpu: a.gpu - b.gpu, egress: a.egress - b.egress });
const sumOf = (c: Charges) => RESOURCES.reduce((s, r) => s + c[r], 0n);

/** The deal an event is about (`id` in the market, `deal` in the SLA pallets), if any. */
function dealOf (e: ChainEvent): number | undefined {
  const raw = e.section === 'market' ? e.data.id : e.data.deal;
  return typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
}

export class ChainHistory {
  /** Blocks folded so far. */
  private readonly folded = new Set<number>();
  /** Per deal: its settlements, by block. */
  private readonly settled = new Map<number, Map<number, Charges>>();
  /** Deals whose creation was seen: publisher and provider. */
  private readonly parties = new Map<number, { publisher: string; provider: string }>();
  /** SLA-related events with the accounts and deals they name. */
  private readonly sla: { block: number; text: string; accounts: string[]; deal?: number }[] = [];

  /** Folds `block`'s events; false (and nothing changes) when it was folded already. */
  fold (block: number, events: ChainEvent[]): boolean {
    if (this.folded.has(block)) return false;
    this.folded.add(block);
    for (const e of events) {
      const deal = dealOf(e);
      if (e.section === 'market' && e.method === 'Settled' && deal !== undefined) {
        const perBlock = this.settled.get(deal) ?? new Map<number, Charges>();
        const before = perBlock.get(block) ?? ZERO;
        const charges = chargesOf(e.data.charges);
        perBlock.set(block, { cpu: before.cpu + charges.cpu, memory: before.memory + charges.memory, storage: before.storage + charges.storage, gpu: before.gpu + charges.gpu, egress: before.egress + charges.egress });
        this.settled.set(deal, perBlock);
      } else if (e.section === 'market' && (e.method === 'DeploymentCreated' || e.method === 'RentCreated') && deal !== undefined) {
        this.parties.set(deal, { publisher: String(e.data.publisher ?? e.data.renter), provider: String(e.data.provider) });
      } else if (SLA_SECTIONS.has(e.section)) {
        const accounts = Object.values(e.data).filter((v): v is string => typeof v === 'string');
        this.sla.push({ block, text: `${e.section}.${e.method} ${e.text ?? JSON.stringify(e.data)}`, accounts, deal });
      }
    }
    return true;
  }

  /** Drops what blocks before `block` brought: a page open for days keeps a bounded window. */
  forget (block: number): void {
    for (const b of this.folded) if (b < block) this.folded.delete(b);
    for (const perBlock of this.settled.values()) for (const b of perBlock.keys()) if (b < block) perBlock.delete(b);
    for (const [deal, perBlock] of this.settled) if (perBlock.size === 0) this.settled.delete(deal);
    const kept = this.sla.filter((e) => e.block >= block);
    this.sla.splice(0, this.sla.length, ...kept);
  }

  /** Whether `block` was folded. */
  has (block: number): boolean { return this.folded.has(block); }

  /**
   * The first block of the unbroken run of folded blocks that ends at `last`: the series reach
   * back to there and no further. `last + 1` when `last` itself was not folded.
   */
  coveredFrom (last: number): number {
    let from = last + 1;
    while (this.folded.has(from - 1)) from--;
    return from;
  }

  /**
   * A deal's bill over the folded blocks up to `anchor` (its bill as read after block
   * `anchor.block`): the bill before each settlement is the anchor less what settled later.
   * Points at the start of the covered run, on each side of every settlement, and at the
   * anchor: a step line, as the bill only moves when it settles.
   */
  billSeries (deal: number, anchor: BillPoint): BillPoint[] {
    const from = this.coveredFrom(anchor.block);
    if (from > anchor.block) return [anchor];
    const settlements = [...(this.settled.get(deal) ?? new Map<number, Charges>()).entries()]
      .filter(([block]) => block >= from && block <= anchor.block)
      .sort((a, b) => b[0] - a[0]);
    const points: BillPoint[] = [anchor];
    let after = anchor.charged;
    for (const [block, charges] of settlements) {
      // After `block` the bill is `after`; just before it, `after` less its settlement.
      if (points[0].block !== block) points.unshift({ block, charged: after, total: sumOf(after) });
      after = sub(after, charges);
      if (block - 1 >= from) points.unshift({ block: block - 1, charged: after, total: sumOf(after) });
    }
    if (points[0].block > from) points.unshift({ block: from, charged: after, total: sumOf(after) });
    return points;
  }

  /**
   * The sum of the bills of `anchors` (deals read after the same block) over the folded blocks:
   * what a provider's open deals billed, by block.
   */
  totalSeries (anchors: Map<number, BillPoint>): [number, number][] {
    const byBlock = new Map<number, bigint>();
    const lines = [...anchors.entries()].map(([deal, anchor]) => this.billSeries(deal, anchor));
    const blocks = [...new Set(lines.flatMap((l) => l.map((p) => p.block)))].sort((a, b) => a - b);
    for (const block of blocks) {
      let sum = 0n;
      for (const line of lines) {
        // A line's value at `block`: its last point at or before it (none yet: nothing billed).
        let value: bigint | undefined;
        for (const p of line) { if (p.block <= block) value = p.total; else break; }
        sum += value ?? line[0]?.total ?? 0n;
      }
      byBlock.set(block, sum);
    }
    return blocks.map((b) => [b, Number(byBlock.get(b))]);
  }

  /**
   * The SLA log of `provider`, newest first: events that name it, and events about `deals`
   * (its deals) or about deals it was seen to take.
   */
  slaLog (provider: string, deals: Iterable<number>): SlaEntry[] {
    const mine = new Set(deals);
    for (const [id, p] of this.parties) if (p.provider === provider) mine.add(id);
    return this.sla
      .filter((e) => e.accounts.includes(provider) || (e.deal !== undefined && mine.has(e.deal)))
      .sort((a, b) => b.block - a.block)
      .map(({ block, text }) => ({ block, text }));
  }
}
