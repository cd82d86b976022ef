// Provider: for a provider's account, its deals, earnings over time, stake and unbonding, SLA
// standing and offer, probes and slashes, pause/resume, bond/unbond.

import { api, submit } from '../chain';
import { lineChart } from '../chart';
import { busy, field, h, serialized, statusLine, table } from '../dom';
import { formatPermill, formatPod, formatResources, parsePod, shortAddress } from '../format';
import { chainHistory, historyNote } from '../history-load';
import type { BillPoint } from '../history';
import { live } from '../live';
import { currentAccount } from '../main';
import { resourcesOf } from '../providers-data';
import { dealIds, readDeal, stateName } from './deals';


export async function providerView (root: HTMLElement): Promise<void> {
  const me = currentAccount();
  const info = (await api.query.registry.providers(me) as any);
  if (info.isNone) {
    root.append(h('p', {}, h('code', {}, me), ' is not a registered provider. Providers register with their agent: see docs/provider-guide.md.'));
    return;
  }
  const status = statusLine();
  const body = h('div', { id: 'provider' });
  const amount = h('input', { type: 'text', inputmode: 'decimal', placeholder: '100', size: 8 });
  const bond = h('button', { type: 'button' }, 'Bond');
  const unbond = h('button', { type: 'button' }, 'Unbond');
  const pause = h('button', { type: 'button' }, 'Pause');
  const resume = h('button', { type: 'button' }, 'Resume');
  bond.addEventListener('click', () => busy(bond, status, async () => {
    const ledger = await api.query.providerStaking.ledgers(me) as any;
    const planck = parsePod(amount.value);
    await submit(ledger.isSome ? api.tx.providerStaking.bondExtra(planck) : api.tx.providerStaking.bond(planck), me);
    status.ok(`bonded ${formatPod(planck)}`);
  }));
  unbond.addEventListener('click', () => busy(unbond, status, async () => {
    const planck = parsePod(amount.value);
    await submit(api.tx.providerStaking.unbond(planck), me);
    status.ok(`unbonding ${formatPod(planck)}`);
  }));
  pause.addEventListener('click', () => busy(pause, status, async () => { await submit(api.tx.registry.pauseProvider(), me); status.ok('paused: no new deals'); }));
  resume.addEventListener('click', () => busy(resume, status, async () => { await submit(api.tx.registry.resumeProvider(), me); status.ok('resumed'); }));

  const render = serialized(async () => {
    const [current, ledger, standing, offer, ids] = await Promise.all([
      api.query.registry.providers(me) as any, api.query.providerStaking.ledgers(me) as any,
      (api.call as any).slaApi.standing(me), (api.call as any).slaApi.offer(me), dealIds(me, 'provider')
    ]);
    const p = current.unwrap();
    const deals = (await Promise.all(ids.map(async (id) => ({ id, read: await readDeal(id) })))).filter((d) => d.read);
    const earned = deals.reduce((sum, d) => sum + (d.read!.bill ? BigInt(d.read!.bill.total.toString()) : 0n), 0n);
    // What its open deals billed by block, counted back from their bills now through the
    // settlements of the blocks read (history, then live).
    const anchors = new Map<number, BillPoint>(deals.filter((d) => d.read!.anchor).map((d) => [d.id, d.read!.anchor!]));
    const earnings = chainHistory.totalSeries(anchors);
    const slaLog = chainHistory.slaLog(me, ids);
    const note = historyNote();
    const l = ledger.isSome ? ledger.unwrap() : undefined;
    const o = offer.isSome ? offer.unwrap() : undefined;
    body.replaceChildren(
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { id: 'provider-status' }, `${p.status.type}${standing.quarantined.isTrue ? ' (quarantined)' : ''}`),
        h('dt', {}, 'Capacity'), h('dd', {}, formatResources(resourcesOf(p.capacity.resources))),
        h('dt', {}, 'Reserved'), h('dd', {}, formatResources(resourcesOf(p.reserved))),
        h('dt', {}, 'Stake'), h('dd', {}, l ? formatPod(BigInt(l.active.toString())) : 'none'),
        h('dt', {}, 'Unbonding'), h('dd', {}, l && l.unlocking.length ? l.unlocking.map((c: any) => `${formatPod(BigInt(c.value.toString()))} at #${c.unlockAt.toString()}`).join(', ') : 'none'),
        h('dt', {}, 'Reputation'), h('dd', {}, `${formatPermill(Number(standing.reputation.toString()))} (windows met ${standing.windowsUp.toString()}, missed ${standing.windowsDown.toString()})`),
        h('dt', {}, 'SLA offer'), h('dd', {}, o ? `up to ${formatPermill(Number(o.maxUptimeTarget.toString()))}, windows ${o.minWindowBlocks.toString()}–${o.maxWindowBlocks.toString()} blocks, penalty ≤ ${formatPod(BigInt(o.maxPenaltyPerWindow.toString()))}` : 'none'),
        h('dt', {}, 'Billed by its open deals'), h('dd', {}, formatPod(earned))),
      lineChart(`Billed by open deals, by finalized block, ${note}`, [{ name: 'billed', points: earnings }], (v) => formatPod(BigInt(Math.round(v)), 6)),
      table('Its deals', ['Deal', 'Publisher', 'State', 'Resources', 'Escrow', 'Billed'], deals.map(({ id, read }) => [
        String(id), h('code', {}, shortAddress(read!.deal.publisher.toString())), stateName(read!.deal.state),
        formatResources(resourcesOf(read!.deal.resources)), formatPod(BigInt(read!.deal.escrow.toString())),
        read!.bill ? formatPod(BigInt(read!.bill.total.toString())) : '–'])),
      table(`SLA windows, probes and slashes (${note})`, ['Block', 'Event'], slaLog.slice(0, 25).map((e) => [`#${e.block}`, h('code', {}, e.text)])));
  });
  root.append(h('p', {}, 'Provider ', h('code', {}, me)), body,
    h('div', { class: 'actions' }, field('Amount (POD)', amount), bond, unbond, pause, resume), status);
  await render();
  live.onFinalized(() => void render().catch((e) => status.fail(e)));
  live.onRefresh(() => void render().catch((e) => status.fail(e)));
}
