// Providers: capacity and free capacity, prices for a chosen workload, region, stake,
// reputation and quarantine, attestation, SLA offers; filtered and sorted like
// `podchain providers`.

import { busy, field, h, statusLine, table } from '../dom';
import { formatPerHour, formatPermill, formatPod, formatResources, shortAddress } from '../format';
import { live } from '../live';
import { loadProviders, type ProviderRow } from '../providers-data';

const SORTS: Record<string, (a: ProviderRow, b: ProviderRow) => number> = {
  price: (a, b) => cmp(a.pricePerHour ?? BigInt(Number.MAX_SAFE_INTEGER) ** 2n, b.pricePerHour ?? BigInt(Number.MAX_SAFE_INTEGER) ** 2n),
  free: (a, b) => b.free.cpuMillicores - a.free.cpuMillicores,
  reputation: (a, b) => b.reputation - a.reputation,
  stake: (a, b) => cmp(b.stake, a.stake)
};
const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

export async function providersView (root: HTMLElement): Promise<void> {
  const cpu = h('input', { type: 'number', min: 1, value: 100, inputmode: 'numeric' });
  const memory = h('input', { type: 'number', min: 1, value: 64, inputmode: 'numeric' });
  const storage = h('input', { type: 'number', min: 0, value: 0, inputmode: 'numeric' });
  const country = h('input', { type: 'text', maxlength: 2, size: 3, placeholder: 'any', autocomplete: 'off' });
  const attested = h('input', { type: 'checkbox' });
  const sort = h('select', {}, ...Object.keys(SORTS).map((k) => h('option', { value: k }, k)));
  const apply = h('button', { type: 'submit' }, 'Show offers');
  const status = statusLine();
  const results = h('div', { id: 'providers-table' });
  const render = async () => {
    const rows = await loadProviders({
      resources: { cpuMillicores: Number(cpu.value), memoryMib: Number(memory.value), storageGib: Number(storage.value), gpus: 0 },
      country: country.value.trim() || undefined,
      attestedOnly: attested.checked
    });
    const shown = rows
      .filter((r) => !country.value.trim() || r.country.toUpperCase() === country.value.trim().toUpperCase())
      .filter((r) => !attested.checked || r.attested)
      .sort(SORTS[sort.value]);
    results.replaceChildren(table(`Providers (${shown.length}), prices for ${cpu.value}m CPU, ${memory.value} MiB, ${storage.value} GiB`,
      ['Provider', 'Region', 'Status', 'Price', 'Free / capacity', 'Stake', 'Reputation', 'Attested', 'SLA offer'],
      shown.map((r) => [
        h('code', { title: r.account }, shortAddress(r.account)),
        r.country,
        r.quarantined ? 'quarantined' : r.status,
        r.pricePerHour === undefined ? 'no room' : formatPerHour(r.pricePerHour),
        `${formatResources(r.free)} / ${formatResources(r.capacity)}`,
        formatPod(r.stake) + (r.unlocking > 0n ? ` (${formatPod(r.unlocking)} unbonding)` : ''),
        formatPermill(r.reputation),
        r.attested ? 'yes' : 'no',
        r.slaOffer ?? 'none'
      ])));
  };
  const form = h('form', { class: 'filters', onsubmit: (e: Event) => { e.preventDefault(); void busy(apply, status, render); } },
    field('CPU (millicores)', cpu), field('Memory (MiB)', memory), field('Storage (GiB)', storage),
    field('Country', country, 'ISO code, e.g. NL'), field('Attested only', attested), field('Sort by', sort), apply);
  root.append(form, status, results);
  await render();
  // Free capacity and quotes change with deals: refresh at each finalized block that touched them.
  live.onFinalized((_, events) => {
    if (events.some(({ event }) => ['market', 'registry', 'providerStaking', 'sla'].includes(event.section))) void render().catch((e) => status.fail(e));
  });
}
