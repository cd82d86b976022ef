// Network: best and finalized block, validators, recent market events.

import { encodeAddress } from '@polkadot/util-crypto';
import { api } from '../chain';
import { h, table } from '../dom';
import { live } from '../live';
import { shortAddress } from '../format';

const SECTIONS = new Set(['market', 'registry', 'sla', 'providerStaking', 'storageProofs']);
const recent: { block: number; text: string }[] = [];

export async function networkView (root: HTMLElement): Promise<void> {
  const best = h('dd', { id: 'best-block' }, `#${live.best}`);
  const finalized = h('dd', { id: 'finalized-block' }, `#${live.finalized}`);
  // Block authors: the session's validators where there is a session pallet, else Aura's.
  const [chain, version, validators] = await Promise.all([
    api.rpc.system.chain(), api.rpc.state.getRuntimeVersion(),
    api.query.session
      ? api.query.session.validators().then((v) => (v as unknown as { toString(): string }[]).map(String))
      : api.query.aura.authorities().then((keys) => (keys as unknown as { toU8a(): Uint8Array }[]).map((k) => encodeAddress(k.toU8a(), api.registry.chainSS58 ?? 42)))
  ]);
  const events = h('div');
  const renderEvents = () => events.replaceChildren(table('Recent market events (finalized)', ['Block', 'Event'],
    recent.slice(0, 25).map((e) => [`#${e.block}`, h('code', {}, e.text)])));
  root.append(
    h('dl', { class: 'facts' },
      h('dt', {}, 'Chain'), h('dd', {}, `${chain.toString()} (${version.specName.toString()} v${version.specVersion.toNumber()})`),
      h('dt', {}, 'Best block'), best,
      h('dt', {}, 'Finalized block'), finalized),
    table('Validators (block authors)', ['Account'], validators.map((v) => [h('code', { title: v }, shortAddress(v))])),
    events);
  renderEvents();
  live.onHeads((heads) => { best.textContent = `#${heads.best}`; finalized.textContent = `#${heads.finalized}`; });
  // The permanent collector (below) runs first at each block.
  live.onFinalized(() => renderEvents());
}

/** Keeps collecting events while other views are shown. */
export function collectEventsAlways (): void {
  live.onFinalized((block, records) => {
    for (const { event } of records.filter(({ event }) => SECTIONS.has(event.section))) {
      recent.unshift({ block, text: `${event.section}.${event.method} ${JSON.stringify(event.data.toHuman())}` });
    }
    recent.splice(100);
  }, true);
}
