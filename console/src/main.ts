// podchain console: routes, the account picker, the live chain head.

import './style.css';
import { accounts, api, connect, loadExtensionAccounts } from './chain';
import { h } from './dom';
import { hasLocalApi, session } from './local';
import { chainHistory, DEFAULT_LOOKBACK, historyStatus, loadHistory, lookback, normalize, onHistory } from './history-load';
import { live, resetViewListeners } from './live';
import { collectEventsAlways, networkView } from './views/network';
import { providersView } from './views/providers';
import { deployView } from './views/deploy';
import { dealsView } from './views/deals';
import { providerView } from './views/provider';

export type View = (root: HTMLElement) => Promise<void> | void;

const views: Record<string, { title: string; render: View }> = {
  network: { title: 'Network', render: networkView },
  providers: { title: 'Providers', render: providersView },
  deploy: { title: 'Deploy', render: deployView },
  deals: { title: 'My deals', render: dealsView },
  provider: { title: 'Provider', render: providerView }
};

const picker = document.getElementById('account') as HTMLSelectElement;

/** The account the console acts as. */
export function currentAccount (): string {
  return picker.value;
}

async function route (): Promise<void> {
  const name = location.hash.replace(/^#\//, '') || 'network';
  const view = views[name] ?? views.network;
  resetViewListeners();
  const root = document.getElementById('view')!;
  root.replaceChildren(h('h1', {}, view.title));
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${view.title} · podchain console`;
  try {
    await view.render(root);
  } catch (err) {
    root.append(h('p', { class: 'status error', role: 'alert' }, err instanceof Error ? err.message : String(err)));
  }
}

async function start (): Promise<void> {
  const head = document.getElementById('head')!;
  try {
    await connect();
  } catch (err) {
    head.textContent = `cannot reach the node: ${String(err)}`;
    return;
  }
  await loadExtensionAccounts().catch(() => undefined);
  // The CLI's own account first: the local API delivers manifests and reads logs with its key.
  const own = hasLocalApi ? (await session().catch(() => ({ account: null }))).account : null;
  const saved = localStorage.getItem('podchain-account');
  picker.replaceChildren(...accounts.map((a) => h('option', { value: a.address },
    `${a.name} ${a.address === own ? '(this console\'s key) ' : ''}${a.address.slice(0, 8)}…`)));
  if (own && !accounts.some((a) => a.address === own)) {
    picker.prepend(h('option', { value: own }, `this console's key ${own.slice(0, 8)}… (sign with the extension)`));
  }
  picker.value = (saved && [...picker.options].some((o) => o.value === saved)) ? saved : (own ?? accounts[0]?.address ?? '');
  picker.addEventListener('change', () => { localStorage.setItem('podchain-account', picker.value); void route(); });
  live.onHeads(({ best, finalized }) => { head.textContent = `best #${best} · finalized #${finalized}`; }, true);
  collectEventsAlways();
  // Every finalized block goes into the history the charts are drawn from.
  // A page open for long keeps the last `keep` blocks (at least the lookback).
  const keep = Math.max(lookback(), DEFAULT_LOOKBACK);
  live.onFinalized((block, events) => {
    chainHistory.fold(block, normalize(events));
    if (block % 100 === 0 && block > keep) {
      chainHistory.forget(block - keep);
      if ((historyStatus.from ?? Infinity) < block - keep) Object.assign(historyStatus, { from: block - keep, pruned: false, error: undefined });
    }
  }, true);
  await live.start(api);
  window.addEventListener('hashchange', () => void route());
  await route();
  document.body.dataset.ready = 'true';
  // Past blocks fill in after the first paint; the view shown redraws as they arrive.
  onHistory(() => live.refresh());
  void loadHistory(api, live.finalized).catch((err) => console.warn('history:', err));
}

void start();
