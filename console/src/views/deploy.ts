// Deploy: a manifest (pasted or dropped), checked with the CLI's rules by the local server; a
// provider picked automatically or by hand; the quote and the escrow; the deal created and
// followed through its stages.

import { api, submit } from '../chain';
import { busy, field, h, statusLine, table } from '../dom';
import { formatPerHour, formatPod, formatResources, parsePod, shortAddress } from '../format';
import { live } from '../live';
import { checkManifest, deliverManifest, hasLocalApi, logs, type ManifestCheck } from '../local';
import { currentAccount } from '../main';
import { matchProviders } from '../providers-data';

const DEFAULT_MAX_EGRESS = 10n * 1024n * 1024n;
const STAGES = ['created', 'manifest delivered', 'accepted', 'running'] as const;

/** Milestones of the last deal this page created, for people and for the browser tests. */
export const timings: Record<string, number> = {};
(window as unknown as { podchainTimings: typeof timings }).podchainTimings = timings;

export function deployView (root: HTMLElement): void {
  const manifest = h('textarea', { rows: 14, cols: 70, spellcheck: 'false', placeholder: 'version: podchain/v1\nname: web\ncontainers: …' });
  const file = h('input', { type: 'file', accept: '.yaml,.yml,.json' });
  const hours = h('input', { type: 'number', min: 1, value: 1, inputmode: 'numeric' });
  const provider = h('select', {}, h('option', { value: 'auto' }, 'automatic: the best-ranked offer'));
  const check = h('button', { type: 'button' }, 'Check manifest and quote');
  const create = h('button', { type: 'button', disabled: true }, 'Create deal');
  const status = statusLine();
  const quote = h('div', { id: 'quote' });
  const progress = h('progress', { max: STAGES.length, value: 0, 'aria-label': 'Deal progress' });
  const stages = h('ol', { class: 'stages' }, ...STAGES.map((s) => h('li', { 'data-stage': s }, s)));
  let checked: (ManifestCheck & { text: string }) | undefined;
  let offers: any[] = [];

  file.addEventListener('change', async () => { if (file.files?.[0]) manifest.value = await file.files[0].text(); });
  manifest.addEventListener('dragover', (e) => e.preventDefault());
  manifest.addEventListener('drop', async (e) => {
    e.preventDefault();
    const dropped = e.dataTransfer?.files[0];
    if (dropped) manifest.value = await dropped.text();
  });
  manifest.addEventListener('input', () => { create.disabled = true; });

  const chosen = () => provider.value === 'auto' ? offers[0] : offers.find((o) => o.provider.toString() === provider.value);
  const escrowFor = (offer: any) => {
    const perHour = BigInt(offer.pricePerHour.toString());
    const c = api.consts.market as any;
    const least = maxBig((perHour * BigInt(c.minPrepaidSeconds.toString()) + 3599n) / 3600n, BigInt(c.minDeposit.toString()));
    return maxBig((perHour * BigInt(Math.max(1, Number(hours.value))) * 3600n + 3599n) / 3600n, least);
  };
  const showQuote = () => {
    const offer = chosen();
    quote.replaceChildren(offer
      ? h('dl', { class: 'facts' },
        h('dt', {}, 'Provider'), h('dd', {}, h('code', {}, offer.provider.toString())),
        h('dt', {}, 'Price'), h('dd', { id: 'quote-price' }, formatPerHour(BigInt(offer.pricePerHour.toString()))),
        h('dt', {}, `Escrow for ${hours.value} h`), h('dd', { id: 'quote-escrow' }, formatPod(escrowFor(offer))))
      : h('p', { class: 'status error' }, 'no provider can run this manifest now'));
    create.disabled = !offer;
  };
  provider.addEventListener('change', showQuote);
  hours.addEventListener('input', () => { if (checked) showQuote(); });

  check.addEventListener('click', () => busy(check, status, async () => {
    const result = await checkManifest(manifest.value);
    checked = { ...result, text: manifest.value };
    offers = await matchProviders({ resources: result.resources });
    provider.replaceChildren(h('option', { value: 'auto' }, 'automatic: the best-ranked offer'),
      ...offers.map((o) => h('option', { value: o.provider.toString() }, `${shortAddress(o.provider.toString())} · ${formatPerHour(BigInt(o.pricePerHour.toString()))}`)));
    status.ok(`manifest valid: ${formatResources(result.resources)}; hash ${result.hash.slice(0, 18)}…`);
    showQuote();
  }));

  create.addEventListener('click', () => busy(create, status, async () => {
    const offer = chosen();
    if (!checked || !offer) throw new Error('check the manifest first');
    const market = api.consts.market as any;
    const chainMax = BigInt(market.maxEgressBytesPerSecond.toString());
    const deposit = escrowFor(offer);
    const tx = api.tx.market.createDeployment(offer.provider, checked.hash, checked.resources, 'Metered', null,
      { maxPrices: offer.prices, maxEgressBytesPerSecond: DEFAULT_MAX_EGRESS < chainMax ? DEFAULT_MAX_EGRESS : chainMax }, deposit);
    const mark = (stage: typeof STAGES[number], detail = '') => {
      const li = stages.querySelector(`[data-stage="${stage}"]`)!;
      li.className = 'done';
      li.textContent = `${stage}${detail ? `: ${detail}` : ''} ✓`;
      progress.value = STAGES.indexOf(stage) + 1;
    };
    for (const li of stages.children) { li.className = ''; li.textContent = (li as HTMLElement).dataset.stage!; }
    progress.value = 0;
    timings.submitted = performance.now();
    const { events, block } = await submit(tx, currentAccount());
    const created = events.find(({ event }) => api.events.market.DeploymentCreated.is(event));
    if (!created) throw new Error('the deal was created but its event is missing');
    const id = Number((created.event.data as any).id.toString());
    timings.created = performance.now();
    timings.createdAtBlock = block;
    mark('created', `deal ${id} in block #${block}`);
    const accepted = waitFor(async (events) => events.some(({ event }) => api.events.market.DeploymentAccepted.is(event) && (event.data as any).id.toNumber() === id)
      || (await (api.call as any).marketApi.deployment(id)).unwrapOr(null)?.state.isActive === true);
    await deliverManifest(id, checked.text);
    mark('manifest delivered');
    await accepted;
    mark('accepted');
    await waitFor(async () => {
      // The agent may be starting the pods, or not know the deal for a block: keep waiting.
      const pods = (await logs(id, 0).catch(() => ({ status: null }))).status ?? '';
      if (pods.startsWith('failed')) throw new Error(`deal ${id}: pods ${pods}`);
      return pods === 'running' || pods === 'idle';
    });
    timings.running = performance.now();
    mark('running');
    status.ok(`deal ${id} runs: see it under My deals`);
  }));

  root.append(
    hasLocalApi ? '' : h('p', { class: 'status error' }, 'Deploying needs `podchain console`, opened at the URL it prints (with its token): it checks the manifest and delivers it to the provider over libp2p.'),
    field('Manifest (YAML or JSON)', manifest, 'paste it, drop a file here, or choose one below'),
    field('Manifest file', file),
    field('Run for (hours)', hours, 'sets the escrow: the price per hour times this'),
    field('Provider', provider),
    h('div', { class: 'actions' }, check, create),
    status, quote, progress, stages);
}

const maxBig = (a: bigint, b: bigint) => (a > b ? a : b);

/** Resolves once `check` holds at a finalized block (checked at once, then at each block). */
function waitFor (check: (events: any[]) => Promise<boolean>): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const run = async (events: any[]) => {
      if (done) return;
      try {
        if (await check(events)) { done = true; resolve(); }
      } catch (err) { done = true; reject(err); }
    };
    live.onFinalized((_, events) => void run(events));
    void run([]);
  });
}
