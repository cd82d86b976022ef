// My deals: status, running bill, the bill per resource over time, top up, update manifest,
// register a name, close, logs, the deal's URL.

import { u8aToString } from '@polkadot/util';
import { cancelAvailability } from '../actions';
import { api, submit } from '../chain';
import { lineChart, type Series } from '../chart';
import { busy, field, h, serialized, statusLine, table } from '../dom';
import { billLines, formatPod, parsePod, RESOURCES, shortAddress, type Charges } from '../format';
import { chainHistory, historyNote } from '../history-load';
import type { BillPoint } from '../history';
import { live } from '../live';
import { checkManifest, deliverManifest, hasLocalApi, logs } from '../local';
import { currentAccount } from '../main';

/** Each deal's bill as last read, after the last finalized block: the charts count back from it. */
const anchors = new Map<number, BillPoint>();
const big = (x: any) => BigInt(x.toString());
const chargesOf = (c: any): Charges => ({ cpu: big(c.cpu), memory: big(c.memory), storage: big(c.storage), gpu: big(c.gpu), egress: big(c.egress) });

/** Deal ids of `account` as publisher. */
export async function dealIds (account: string, as: 'publisher' | 'provider' = 'publisher'): Promise<number[]> {
  const index = as === 'publisher' ? api.query.market.publisherDeployments : api.query.market.providerDeployments;
  const keys = await index.keys(account);
  return keys.map((k) => Number(k.args[1].toString())).sort((a, b) => b - a);
}

/** Reads deal `id` and its bill as of the last finalized block; keeps the bill for the chart. */
export async function readDeal (id: number): Promise<{ deal: any; bill: any; anchor?: BillPoint } | undefined> {
  const block = live.finalized;
  const at = (live.atFinalized ?? api) as any;
  const [deal, bill] = await Promise.all([at.call.marketApi.deployment(id), at.call.marketApi.bill(id)]);
  if (deal.isNone) return undefined;
  let anchor: BillPoint | undefined;
  if (bill.isSome) {
    const b = bill.unwrap();
    anchor = { block, charged: chargesOf(b.charged), total: big(b.total) };
    if ((anchors.get(id)?.block ?? -1) <= block) anchors.set(id, anchor);
  }
  return { deal: deal.unwrap(), bill: bill.unwrapOr(null), anchor };
}

/** Deal `id`'s bill by block: from the chain's history, then live. */
export function billChart (id: number, title: string): HTMLElement {
  const anchor = anchors.get(id);
  const points = anchor ? chainHistory.billSeries(id, anchor) : [];
  const series: Series[] = RESOURCES.map((r) => ({ name: r, points: points.map((p) => [p.block, Number(p.charged[r])] as [number, number]) }))
    .filter((s) => s.points.some(([, y]) => y > 0));
  return lineChart(`${title}, ${historyNote()}`, series.length ? series : [{ name: 'total', points: points.map((p) => [p.block, Number(p.total)]) }], (v) => formatPod(BigInt(Math.round(v)), 6));
}

export function stateName (state: any): string {
  if (state.isOutOfFunds) return `out of funds (grace ends at #${state.asOutOfFunds.graceEnds.toString()})`;
  return state.type.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

async function dealUrl (id: number, provider: string): Promise<string | undefined> {
  // The name and the deposit held for it.
  const name = await api.query.market.deploymentNames(id);
  if ((name as any).isNone) return undefined;
  const info = (await api.query.registry.providers(provider) as any).unwrapOr(null);
  if (!info) return undefined;
  // Provider-registered text: only a web URL becomes a link.
  const gateway = new URL(u8aToString(info.gatewayUrl.toU8a(true)));
  if (gateway.protocol !== 'http:' && gateway.protocol !== 'https:') return undefined;
  const domain = u8aToString(info.ingressDomain.toU8a(true));
  return `${gateway.protocol}//${u8aToString((name as any).unwrap()[0].toU8a(true))}.${domain}${gateway.port ? `:${gateway.port}` : ''}/`;
}

function dealCard (id: number, deal: any, bill: any): HTMLElement {
  const status = statusLine();
  const card = h('section', { class: 'deal', 'aria-labelledby': `deal-${id}-title`, 'data-deal': id });
  const amount = h('input', { type: 'text', inputmode: 'decimal', placeholder: '10', size: 8 });
  const topUp = h('button', { type: 'button' }, 'Top up');
  const label = h('input', { type: 'text', placeholder: 'my-app', size: 12, autocomplete: 'off' });
  const name = h('button', { type: 'button' }, 'Register name');
  const newManifest = h('textarea', { rows: 6, cols: 60, spellcheck: 'false' });
  const update = h('button', { type: 'button' }, 'Update manifest');
  const close = h('button', { type: 'button', class: 'danger' }, 'Close deal');
  const pending = deal.state.isPending;
  const cancel = cancelAvailability(pending ? { pending: true, createdAt: Number(deal.state.asPending.createdAt.toString()) } : { pending: false },
    Number((api.consts.market.acceptanceTimeout as any).toString()), live.best);
  const cancelButton = h('button', { type: 'button', class: 'danger', title: cancel.reason }, 'Cancel deal');
  const showLogs = h('button', { type: 'button', disabled: !hasLocalApi, 'data-static': !hasLocalApi }, 'Show logs');
  const logBox = h('pre', { class: 'logs', hidden: true, tabindex: 0, 'aria-label': `Logs of deal ${id}` });
  const url = h('span', {}, '');
  const me = currentAccount();
  topUp.addEventListener('click', () => busy(topUp, status, async () => {
    const planck = parsePod(amount.value);
    await submit(api.tx.market.topUp(id, planck), me);
    status.ok(`topped up ${formatPod(planck)}`);
  }));
  name.addEventListener('click', () => busy(name, status, async () => {
    await submit(api.tx.market.registerName(id, label.value.trim()), me);
    status.ok(`name ${label.value.trim()} registered`);
  }));
  update.addEventListener('click', () => busy(update, status, async () => {
    const checked = await checkManifest(newManifest.value);
    await submit(api.tx.market.updateManifest(id, checked.hash), me);
    await deliverManifest(id, newManifest.value);
    status.ok('new manifest delivered: the provider rolls it out');
  }));
  close.addEventListener('click', () => busy(close, status, async () => {
    await submit(api.tx.market.closeDeployment(id, 'PublisherRequest'), me);
    status.ok(`deal ${id} closed`);
  }));
  cancelButton.addEventListener('click', () => busy(cancelButton, status, async () => {
    await submit(api.tx.market.cancelDeployment(id), me);
    status.ok(`deal ${id} cancelled: the escrow is refunded`);
  }));
  showLogs.addEventListener('click', () => busy(showLogs, status, async () => {
    const result = await logs(id, 100);
    logBox.hidden = false;
    logBox.textContent = `pods: ${result.status ?? 'unknown'}\n` + result.lines.map((l) => `${l.container} | ${l.text}`).join('\n');
  }));
  void dealUrl(id, deal.provider.toString()).then((u) => { if (u) url.replaceChildren(h('a', { href: u, target: '_blank', rel: 'noopener' }, u)); else url.textContent = 'register a name to get one'; });
  const charged = bill ? chargesOf(bill.charged) : undefined;
  card.append(
    h('h2', { id: `deal-${id}-title` }, `Deal ${id}`, ' ', h('span', { class: 'badge', 'data-state': deal.state.type }, stateName(deal.state))),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Provider'), h('dd', {}, h('code', { title: deal.provider.toString() }, shortAddress(deal.provider.toString()))),
      h('dt', {}, 'Escrow'), h('dd', { class: 'escrow' }, formatPod(big(deal.escrow))),
      h('dt', {}, 'Billed'), h('dd', { class: 'billed' }, bill ? formatPod(big(bill.total)) : '–'),
      h('dt', {}, 'Funded until'), h('dd', {}, bill && bill.fundedUntil.isSome ? `#${bill.fundedUntil.unwrap().toString()}` : '–'),
      h('dt', {}, 'URL'), h('dd', {}, url)),
    charged ? table(`Bill of deal ${id}`, ['Resource', 'Charged', 'Share'], billLines(charged).map((l) => [l.resource, formatPod(l.amount, 6), `${l.percent}%`])) : '',
    billChart(id, `Deal ${id}: charges per resource, by finalized block`),
    h('div', { class: 'actions' }, field('Top-up amount (POD)', amount), topUp, field('Name', label, 'lowercase letters, digits, -'), name),
    h('details', {}, h('summary', {}, 'Update manifest'), field('New manifest', newManifest), update),
    h('div', { class: 'actions' }, showLogs,
      // A pending deal cannot be closed, only cancelled once its provider had time to accept.
      pending ? (cancel.available ? cancelButton : h('span', { class: 'muted cancel-note' }, cancel.reason)) : close),
    status, logBox);
  return card;
}

export async function dealsView (root: HTMLElement): Promise<void> {
  const list = h('div', { id: 'deals' });
  root.append(h('p', {}, 'Deals of ', h('code', {}, currentAccount()), ', updated at each finalized block.'), list);
  const cards = new Map<number, HTMLElement>();
  const render = serialized(async () => {
    const ids = await dealIds(currentAccount());
    const seen = new Set<number>();
    for (const id of ids) {
      const read = await readDeal(id);
      if (!read) continue;
      seen.add(id);
      const fresh = dealCard(id, read.deal, read.bill);
      const old = cards.get(id);
      // Keep a card whose controls are in use (typing, a transaction being signed, logs shown).
      const active = document.activeElement;
      const typing = old?.contains(active) && active?.matches('input, textarea, select');
      if (old && (typing || old.querySelector('button:disabled:not([data-static]), pre.logs:not([hidden])'))) {
        old.querySelector('.escrow')!.textContent = fresh.querySelector('.escrow')!.textContent;
        old.querySelector('.billed')!.textContent = fresh.querySelector('.billed')!.textContent;
        continue;
      }
      cards.set(id, fresh);
      if (old) {
        // The last action's outcome stays shown.
        const [was, now] = [old.querySelector('.status'), fresh.querySelector('.status')];
        if (was && now) { now.className = was.className; now.textContent = was.textContent; }
        // Keyboard users keep their place: the same control has the focus in the new card.
        const focused = old.contains(active) ? (active as HTMLElement).textContent : null;
        old.replaceWith(fresh);
        if (focused) [...fresh.querySelectorAll('button')].find((b) => b.textContent === focused)?.focus();
      } else {
        list.append(fresh);
      }
    }
    for (const [id, card] of cards) if (!seen.has(id)) { card.remove(); cards.delete(id); }
    if (cards.size === 0) list.replaceChildren(h('p', { class: 'muted', id: 'no-deals' }, 'no open deals'));
    else list.querySelector('#no-deals')?.remove();
  });
  await render();
  live.onFinalized(() => void render().catch(() => undefined));
  live.onRefresh(() => void render().catch(() => undefined));
}
