// What the console knows of providers: the registry's entries joined with the runtime APIs'
// quotes (the same `match_providers` the CLI ranks by), standings, SLA offers and stakes.

import { u8aToString } from '@polkadot/util';
import { api } from './chain';
import type { Prices, Resources } from './format';

export interface ProviderRow {
  account: string;
  country: string;
  status: string;
  capacity: Resources;
  free: Resources;
  prices: Prices;
  /** The workload's price per hour, when the provider can run it now. */
  pricePerHour?: bigint;
  attested: boolean;
  reputation: number;
  quarantined: boolean;
  stake: bigint;
  unlocking: bigint;
  slaOffer?: string;
  gatewayUrl: string;
  ingressDomain: string;
}

export interface Workload { resources: Resources; country?: string; attestedOnly?: boolean }

const num = (x: any) => Number(x.toString());
const big = (x: any) => BigInt(x.toString());
export const resourcesOf = (r: any): Resources => ({ cpuMillicores: num(r.cpuMillicores), memoryMib: num(r.memoryMib), storageGib: num(r.storageGib), gpus: num(r.gpus) });
export const pricesOf = (p: any): Prices => ({
  cpuPerMillicoreSecond: big(p.cpuPerMillicoreSecond), memoryPerMibSecond: big(p.memoryPerMibSecond),
  storagePerGibSecond: big(p.storagePerGibSecond), gpuPerSecond: big(p.gpuPerSecond), egressPerByte: big(p.egressPerByte)
});

/** The offers for `workload`, cheapest first, as `match_providers` ranks them. */
export async function matchProviders (workload: Workload): Promise<any[]> {
  const matches = await (api.call as any).registryApi.matchProviders({
    resources: workload.resources,
    country: workload.country ? workload.country.toUpperCase() : null,
    gpuModel: null,
    attestedOnly: workload.attestedOnly ?? false,
    maxPricePerHour: null,
    limit: 0
  });
  return matches.toArray();
}

/** Every registered provider, with its quote for `workload` if it can run it. */
export async function loadProviders (workload: Workload): Promise<ProviderRow[]> {
  const [entries, matches] = await Promise.all([api.query.registry.providers.entries(), matchProviders(workload)]);
  const quotes = new Map(matches.map((m) => [m.provider.toString(), m]));
  return Promise.all(entries.map(async ([key, value]) => {
    const account = key.args[0].toString();
    const info = (value as any).unwrap();
    const [standing, offer, ledger] = await Promise.all([
      (api.call as any).slaApi.standing(account),
      (api.call as any).slaApi.offer(account),
      api.query.providerStaking.ledgers(account)
    ]);
    const match = quotes.get(account);
    const capacity = resourcesOf(info.capacity.resources);
    const reserved = resourcesOf(info.reserved);
    const stake = (ledger as any).isSome ? (ledger as any).unwrap() : undefined;
    const o = offer.isSome ? offer.unwrap() : undefined;
    return {
      account,
      country: u8aToString(info.region.country.toU8a()),
      status: info.status.type,
      capacity,
      free: match ? resourcesOf(match.free) : {
        cpuMillicores: Math.max(0, capacity.cpuMillicores - reserved.cpuMillicores),
        memoryMib: Math.max(0, capacity.memoryMib - reserved.memoryMib),
        storageGib: Math.max(0, capacity.storageGib - reserved.storageGib),
        gpus: Math.max(0, capacity.gpus - reserved.gpus)
      },
      prices: pricesOf(info.prices),
      pricePerHour: match ? big(match.pricePerHour) : undefined,
      attested: match ? match.attested.isTrue : false,
      reputation: num(standing.reputation),
      quarantined: standing.quarantined.isTrue,
      stake: stake ? big(stake.active) : 0n,
      unlocking: stake ? stake.unlocking.reduce((sum: bigint, c: any) => sum + big(c.value), 0n) : 0n,
      slaOffer: o ? `up to ${num(o.maxUptimeTarget) / 10000}% uptime, windows ${num(o.minWindowBlocks)}–${num(o.maxWindowBlocks)} blocks` : undefined,
      gatewayUrl: u8aToString(info.gatewayUrl.toU8a(true)),
      ingressDomain: u8aToString(info.ingressDomain.toU8a(true))
    } satisfies ProviderRow;
  }));
}
