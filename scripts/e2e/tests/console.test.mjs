// The web console (`podchain console`) in Debian's chromium, driven by playwright-core, against a
// real dev node, a provider agent on podman and the CLI's local server: the provider is listed,
// the web fixture is deployed, runs and is billed, topped up, named, its logs read, and closed.
// Every view is screenshotted (under $CONSOLE_SCREENSHOTS, default the test's temporary
// directory), checked for console errors, keyboard reachability and axe's WCAG 2 A/AA rules.
// The local server's refusals of other origins, hosts and token-less requests are checked too.
// The charts and the SLA log are checked to reach back before a page reload (read from the
// chain's past blocks). A page on a chain presented as a live one (no dev accounts) signs
// through an injected polkadot.js-extension-shaped provider backed by a real sr25519 key in this
// process: a top-up and the cancel of a deal to a provider that runs no agent land on chain.
//
// Needs root (podman), /usr/bin/chromium (scripts/setup.sh) and the agent and CLI binaries
// that `cargo test --release --workspace` leaves in the target dir.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { freePorts, PodchainNode, waitFor } from '../lib/node.mjs';
import { submitFinalized } from '../lib/chain.mjs';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const TARGET = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/podchain/target');
const AGENT_BIN = process.env.PODCHAIN_AGENT || join(TARGET, 'release/podchain-agent');
const CLI_BIN = process.env.PODCHAIN_CLI || join(TARGET, 'release/podchain');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const work = mkdtempSync(join(tmpdir(), 'podchain-console-'));
const shots = process.env.CONSOLE_SCREENSHOTS || join(work, 'screenshots');
mkdirSync(shots, { recursive: true });

// consoleBase: the server; consoleUrl: the URL it printed, with its token.
let node, agent, consoleServer, browser, consoleBase, consoleUrl, consoleToken, consolePort, gatewayPort;
// The test's own connection, and the deal to //Ferdie (a provider with no agent): it stays pending.
let api, keyring, pendingId, pendingCreatedAt;
const processes = [];

/** Starts `bin args`, its output in `work/<name>.log`; resolves once `ready()` holds. */
function startProcess (name, bin, args, env = {}) {
  const log = createWriteStream(join(work, `${name}.log`));
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  proc.exited = new Promise((resolve) => proc.once('close', resolve));
  processes.push(proc);
  return proc;
}

const tail = (name) => {
  try { return readFileSync(join(work, `${name}.log`), 'utf8').split('\n').slice(-30).join('\n'); } catch { return ''; }
};

/** A raw HTTP request to the console server, with exactly these headers (Host included). */
function raw (method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: consolePort, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

before(async () => {
  node = new PodchainNode({ name: 'e2e-console', args: ['--dev'] });
  await node.start();
  let p2pPort, httpPort;
  [p2pPort, httpPort, gatewayPort, consolePort] = await freePorts(4);
  writeFileSync(join(work, 'provider.key'), '//Charlie\n', { mode: 0o600 });
  const agentArgs = ['--rpc-url', node.wsUrl, '--key-file', join(work, 'provider.key'), '--data-dir', join(work, 'agent'),
    '--p2p-listen', `/ip4/127.0.0.1/tcp/${p2pPort}`, '--http-listen', `127.0.0.1:${httpPort}`,
    '--sample-seconds', '2', '--report-every-blocks', '5',
    '--ingress-domain', 'localhost', '--gateway-listen', `127.0.0.1:${gatewayPort}`];
  const peerId = execFileSync(AGENT_BIN, [...agentArgs, 'peer-id'], { encoding: 'utf8' }).trim();
  execFileSync('node', [join(REPO, 'scripts/e2e/examples/register-provider.mjs')], {
    env: { ...process.env, PODCHAIN_RPC: node.wsUrl, PROVIDER_SECRET: '//Charlie', PEER_ID: peerId,
      MULTIADDR: `/ip4/127.0.0.1/tcp/${p2pPort}`, GATEWAY_URL: `http://127.0.0.1:${gatewayPort}`, INGRESS_DOMAIN: 'localhost' },
    stdio: 'ignore'
  });
  agent = startProcess('agent', AGENT_BIN, agentArgs);
  await waitFor('the agent\'s /healthz', async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, { timeoutMs: 90_000 })
    .catch((e) => { throw new Error(`${e.message}\n${tail('agent')}`); });
  execFileSync(join(REPO, 'scripts/build-test-image.sh'), { env: { ...process.env, PODCHAIN_PODMAN_DIR: join(work, 'agent/podman'), SKIP_APT: '1' }, stdio: 'ignore' });

  // //Ferdie registers as a provider but runs no agent: a deal to it stays pending.
  api = await ApiPromise.create({ provider: new WsProvider(node.wsUrl), noInitWarn: true });
  keyring = new Keyring({ type: 'sr25519' });
  const ferdieKey = join(work, 'ferdie.key');
  writeFileSync(ferdieKey, '//Ferdie\n', { mode: 0o600 });
  const ferdiePeer = execFileSync(AGENT_BIN, ['--rpc-url', node.wsUrl, '--key-file', ferdieKey, '--data-dir', join(work, 'ferdie'), 'peer-id'], { encoding: 'utf8' }).trim();
  execFileSync('node', [join(REPO, 'scripts/e2e/examples/register-provider.mjs')], {
    env: { ...process.env, PODCHAIN_RPC: node.wsUrl, PROVIDER_SECRET: '//Ferdie', PEER_ID: ferdiePeer,
      MULTIADDR: '/ip4/127.0.0.1/tcp/9', GATEWAY_URL: 'http://127.0.0.1:9', INGRESS_DOMAIN: 'localhost', COUNTRY: 'FR',
      // Dearer than //Charlie: the Deploy view's automatic pick stays //Charlie.
      CPU_PRICE: '5000000' },
    stdio: 'ignore'
  });
  const ferdie = keyring.addFromUri('//Ferdie').address;
  const prices = (await api.query.registry.providers(ferdie)).unwrap().prices.toJSON();
  const created = await submitFinalized(api, api.tx.market.createDeployment(ferdie, '0x' + 'ab'.repeat(32),
    { cpuMillicores: 100, memoryMib: 64, storageGib: 1, gpus: 0 }, 'Metered', null,
    { maxPrices: prices, maxEgressBytesPerSecond: 1n << 20n }, 10n * 10n ** 12n), keyring.addFromUri('//Dave'));
  pendingId = created.find((e) => api.events.market.DeploymentCreated.is(e)).data.id.toNumber();
  pendingCreatedAt = (await api.query.market.deployments(pendingId)).unwrap().state.asPending.createdAt.toNumber();

  const key = join(work, 'publisher.key');
  execFileSync(CLI_BIN, ['--key-file', key, 'account', 'import', '//Dave'], { stdio: 'ignore' });
  consoleServer = startProcess('console', CLI_BIN, ['--rpc', node.wsUrl, '--key-file', key, 'console', '--listen', `127.0.0.1:${consolePort}`]);
  consoleBase = `http://127.0.0.1:${consolePort}/`;
  consoleUrl = await waitFor('podchain console to print its URL', () => tail('console').match(/http:\/\/\S+\?token=[0-9a-f]{64}/)?.[0], { timeoutMs: 30_000 })
    .catch((e) => { throw new Error(`${e.message}\n${tail('console')}`); });
  consoleToken = new URL(consoleUrl).searchParams.get('token');
  assert.ok(consoleUrl.startsWith(consoleBase), consoleUrl);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  for (const proc of processes.reverse()) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await proc.exited;
    clearTimeout(timer);
  }
  const podman = join(work, 'agent/podman');
  const env = { ...process.env, CONTAINERS_CONF: join(podman, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(podman, 'storage.conf') };
  for (const args of [['pod', 'rm', '--all', '--force', '--time', '0'], ['network', 'prune', '--force']]) {
    try { execFileSync('podman', args, { env, stdio: 'ignore' }); } catch {}
  }
  await api?.disconnect();
  await node?.stop();
  console.log(`console screenshots in ${shots}`);
});

/** A page that records console errors and uncaught exceptions. */
async function openPage () {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
  page.on('pageerror', (err) => page.errors.push(err.message));
  return page;
}

/** Screenshot, axe (WCAG 2 A and AA) and keyboard reachability of the view shown. */
async function checkView (page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  await page.addScriptTag({ content: AXE_SOURCE });
  const violations = await page.evaluate(async () =>
    (await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] })).violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`));
  assert.deepEqual(violations, [], `${name}: axe violations`);
  // Every enabled control is reached by Tab.
  const controls = await page.evaluate(() => {
    const all = [...document.querySelectorAll('a[href], button, input, select, textarea, summary, pre[tabindex]')]
      .filter((el) => !el.disabled && el.offsetParent !== null && !el.closest('dialog:not([open])') &&
        // The content of a closed <details> is not shown (its summary is).
        !(el.closest('details:not([open])') && !el.closest('summary')));
    all.forEach((el, i) => { el.dataset.reach = String(i); });
    return all.length;
  });
  const reached = new Set();
  await page.evaluate(() => document.activeElement?.blur());
  for (let i = 0; i < controls * 2 + 5 && reached.size < controls; i++) {
    await page.keyboard.press('Tab');
    const index = await page.evaluate(() => document.activeElement?.dataset.reach);
    if (index !== undefined) reached.add(index);
  }
  const missed = await page.evaluate((reached) => [...document.querySelectorAll('[data-reach]')]
    .filter((el) => !reached.includes(el.dataset.reach)).map((el) => el.outerHTML.slice(0, 120)), [...reached]);
  assert.deepEqual(missed, [], `${name}: every control is reachable by keyboard`);
  assert.deepEqual(page.errors, [], `${name}: console errors`);
}

const WEB = readFileSync(join(REPO, 'client/manifest/fixtures/web.yaml'), 'utf8').replace('"127.0.0.1:8080"', '"8080"');

test('the console shows the provider, deploys the web fixture and follows it to its close', async () => {
  const page = await openPage();
  const started = Date.now();
  await page.goto(`${consoleUrl}#/network`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  const ready = Date.now() - started;
  const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? performance.getEntriesByName('first-paint')[0]?.startTime);
  console.log(`console: first paint ${Math.round(paint)} ms, connected and showing the chain ${ready} ms after navigation`);
  assert.ok(paint <= 1000, `first paint within 1 s on localhost (${paint} ms)`);
  await page.waitForFunction(() => document.getElementById('finalized-block')?.textContent !== '#0');
  await checkView(page, 'network');

  // Providers: //Charlie, with its price for the default workload.
  await page.click('nav a[href="#/providers"]');
  await page.waitForSelector('#providers-table tbody tr td code');
  const providers = await page.textContent('#providers-table');
  assert.match(providers, /DE/);
  assert.match(providers, /POD\/h/);
  assert.match(providers, /100 POD/, 'its stake');
  await checkView(page, 'providers');

  // A second page watches My deals while the first deploys: a new deal appears there live.
  const watcher = await openPage();
  await watcher.goto(`${consoleUrl}#/deals`);
  assert.ok(!watcher.url().includes('token='), 'the token leaves the address bar');
  // The deal to //Ferdie is pending: it cannot be cancelled before the acceptance timeout, and
  // the card says from which block instead of offering a button that would fail.
  const timeout = api.consts.market.acceptanceTimeout.toNumber();
  const note = await watcher.waitForSelector(`[data-deal="${pendingId}"] .cancel-note`);
  assert.match(await note.textContent(), new RegExp(`cancellable from block ${pendingCreatedAt + timeout}\\b`));
  assert.equal(await watcher.$(`[data-deal="${pendingId}"] >> text=Cancel deal`), null);
  assert.equal(await watcher.$(`[data-deal="${pendingId}"] >> text=Close deal`), null, 'a pending deal cannot be closed');

  // Deploy: check, quote, sign (the dialog shows the call), follow the stages.
  await page.click('nav a[href="#/deploy"]');
  await page.fill('textarea', 'version: podchain/v1\nname: web\ncontainers:\n  - name: x\n    image: busybox\n    resources: { cpu: lots }\n');
  await page.click('text=Check manifest and quote');
  await page.waitForSelector('.status.error');
  assert.match(await page.textContent('.status.error'), /\d+:\d+: /, 'manifest errors carry line:column');
  await page.fill('textarea', WEB);
  await page.click('text=Check manifest and quote');
  await page.waitForSelector('#quote-escrow');
  assert.match(await page.textContent('#quote-price'), /POD\/h/);
  await checkView(page, 'deploy');
  await page.click('text=Create deal');
  await page.waitForSelector('dialog[open]');
  const call = await page.textContent('#confirm-call');
  assert.match(call, /^market\.createDeployment\(/, 'the user sees the call they sign');
  assert.match(call, /"deposit"/);
  await page.screenshot({ path: join(shots, 'sign.png') });
  const clicked = Date.now();
  await page.click('#confirm-sign');
  await page.waitForSelector('[data-stage="created"].done', { timeout: 60_000 });
  const createdAt = Date.now();
  const id = Number((await page.textContent('[data-stage="created"]')).match(/deal (\d+)/)[1]);
  await watcher.waitForSelector(`[data-deal="${id}"]`, { timeout: 30_000 });
  const shownAt = Date.now();
  const blockCreated = await page.evaluate(() => window.podchainTimings.createdAtBlock);
  const blockShown = Number((await watcher.textContent('#head')).match(/finalized #(\d+)/)[1]);
  console.log(`console: deal ${id} finalized ${createdAt - clicked} ms after signing; shown in My deals of another page ${shownAt - createdAt} ms later (finalized block #${blockCreated} -> #${blockShown})`);
  assert.ok(blockShown - blockCreated <= 1, 'a new deal is visible within one finalized block');
  await page.waitForSelector('[data-stage="running"].done', { timeout: 120_000 });
  const timings = await page.evaluate(() => window.podchainTimings);
  console.log(`console: deal ${id} running ${Math.round(timings.running - timings.submitted)} ms after signing`);
  await page.screenshot({ path: join(shots, 'deploy-running.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  assert.deepEqual(watcher.errors, []);
  await watcher.close();

  // My deals: billed, topped up, named (and served by that name), logs.
  await page.click('nav a[href="#/deals"]');
  const card = `[data-deal="${id}"]`;
  await page.waitForSelector(card);
  await page.waitForFunction((card) => /[1-9]/.test(document.querySelector(`${card} .billed`)?.textContent ?? ''), card, { timeout: 60_000 });
  const escrowBefore = await page.textContent(`${card} .escrow`);
  await page.fill(`${card} input[placeholder="10"]`, '5');
  await page.click(`${card} >> text=Top up`);
  await page.click('#confirm-sign');
  await page.waitForSelector(`${card} .status.ok`, { timeout: 30_000 });
  assert.match(await page.textContent(`${card} .status.ok`), /topped up 5 POD/);
  await page.waitForFunction(([card, before]) => document.querySelector(`${card} .escrow`)?.textContent !== before, [card, escrowBefore]);
  // A refused transaction shows the chain's named error with its docs.
  await page.fill(`${card} input[placeholder="my-app"]`, '-bad-');
  await page.click(`${card} >> text=Register name`);
  await page.click('#confirm-sign');
  await page.waitForSelector(`${card} .status.error`, { timeout: 30_000 });
  assert.match(await page.textContent(`${card} .status.error`), /^market\.[A-Za-z]+: \S/);
  await page.fill(`${card} input[placeholder="my-app"]`, 'web');
  await page.click(`${card} >> text=Register name`);
  await page.click('#confirm-sign');
  await page.waitForSelector(`${card} .status.ok`, { timeout: 30_000 });
  await page.waitForSelector(`${card} a[href="http://web.localhost:${gatewayPort}/"]`, { timeout: 30_000 });
  await waitFor('the deal to answer by its name', () => new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: gatewayPort, path: '/', headers: { host: 'web.localhost' } }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('podchain-demo ok')));
    });
    req.on('error', () => resolve(false));
    req.end();
  }), { timeoutMs: 30_000 });
  await page.click(`${card} >> text=Show logs`);
  await page.waitForSelector(`${card} pre.logs:not([hidden])`);
  assert.match(await page.textContent(`${card} pre.logs`), /pods: running/);
  await page.waitForFunction((card) => document.querySelectorAll(`${card} .chart polyline`).length > 0, card, { timeout: 30_000 });

  // After a reload, the bill chart still reaches back before it: read from past blocks.
  const reloadedAt = Number((await page.textContent('#head')).match(/finalized #(\d+)/)[1]);
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  await page.waitForFunction(() => window.podchainHistory && !window.podchainHistory.loading, null, { timeout: 60_000 });
  const history = await page.evaluate(() => window.podchainHistory);
  console.log(`console: history of ${history.blocks} blocks (since block ${history.from}) read in ${history.ms} ms after a reload at #${reloadedAt}`);
  assert.ok(history.from <= blockCreated, `history reaches back to the deal's creation (from #${history.from})`);
  const chart = `${card} .chart`;
  await page.waitForFunction((chart) => /since block \d+/.test(document.querySelector(`${chart} figcaption`)?.textContent ?? ''), chart);
  const first = Number(await page.getAttribute(chart, 'data-first'));
  assert.ok(first <= blockCreated && first < reloadedAt, `the bill chart starts at #${first}, before the reload at #${reloadedAt}`);
  // Settlements before the reload are steps in the line (usage reports every 5 blocks).
  const steps = await page.evaluate((chart) => Math.max(...[...document.querySelectorAll(`${chart} polyline`)].map((l) => l.getAttribute('points').split(' ').length)), chart);
  assert.ok(steps >= 4, `the bill chart has its settlements before the reload (${steps} points)`);
  await checkView(page, 'deals');

  // Provider: //Charlie's view of the same deal.
  const charlie = await page.evaluate(() => [...document.querySelectorAll('#account option')].find((o) => o.textContent.startsWith('Charlie'))?.value);
  await page.selectOption('#account', charlie);
  await page.click('nav a[href="#/provider"]');
  await page.waitForSelector('#provider-status');
  assert.match(await page.textContent('#provider'), new RegExp(`Its deals[\\s\\S]*${id}`));
  // Earnings by finalized block: a line once two blocks were seen.
  await page.waitForSelector('#provider svg polyline', { timeout: 30_000 });
  assert.ok(Number(await page.getAttribute('#provider .chart', 'data-first')) < reloadedAt, 'earnings reach back before the reload');
  assert.match(await page.textContent('#provider table:last-of-type caption'), /since block \d+/);
  // Its bond, in a block before the page (re)loaded, is in its log: read from the chain.
  const bonded = await page.$$eval('#provider table:last-of-type tbody tr', (rows) => rows.map((r) => r.textContent)
    .filter((t) => t.includes('providerStaking.Bonded')).map((t) => Number(t.match(/^#(\d+)/)?.[1])));
  assert.ok(bonded.length === 1 && bonded[0] < reloadedAt, `the bond before the reload is in the SLA log (${bonded})`);
  await checkView(page, 'provider');

  // Close, as the publisher.
  const dave = await page.evaluate(() => [...document.querySelectorAll('#account option')].find((o) => o.textContent.startsWith('Dave'))?.value);
  await page.selectOption('#account', dave);
  await page.click('nav a[href="#/deals"]');
  await page.waitForSelector(card);
  await page.click(`${card} >> text=Close deal`);
  await page.click('#confirm-sign');
  await page.waitForFunction((card) => !document.querySelector(card) || /clos/.test(document.querySelector(`${card} .badge`)?.textContent ?? ''), card, { timeout: 60_000 });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a browser extension signs: a top-up and the cancel of a pending deal land, on a chain shown as live', async () => {
  // The extension holds //Dave's key here, in this process; the page only sees the provider that
  // polkadot.js extensions inject, and the console reaches it through @polkadot/extension-dapp.
  const dave = keyring.addFromUri('//Dave', { name: 'Dave (extension)' });
  const signed = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.exposeFunction('podchainTestSign', (payload) => {
    signed.push(payload);
    if (payload.address !== dave.address) throw new Error(`no key for ${payload.address}`);
    const { signature } = api.registry.createType('ExtrinsicPayload', payload, { version: payload.version }).sign(dave);
    return signature;
  });
  await context.addInitScript(({ address }) => {
    let id = 0;
    window.injectedWeb3 = {
      'polkadot-js': {
        version: '0.63.1',
        enable: async () => ({
          accounts: {
            get: async () => [{ address, name: 'Dave (extension)', type: 'sr25519' }],
            subscribe: (cb) => { cb([{ address, name: 'Dave (extension)', type: 'sr25519' }]); return () => {}; }
          },
          signer: { signPayload: async (payload) => ({ id: ++id, signature: await window.podchainTestSign(payload) }) }
        })
      }
    };
  }, { address: dave.address });
  // The node, as this page sees it, is a live chain: the console offers no dev accounts.
  await context.routeWebSocket(new RegExp(`^${node.wsUrl.replace(/\./g, '\\.')}/?$`), routeAsLiveChain);
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
  page.on('pageerror', (err) => page.errors.push(err.message));
  await page.goto(`${consoleUrl}#/deals`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  const options = await page.$$eval('#account option', (os) => os.map((o) => o.textContent));
  assert.ok(options.length > 0 && options.every((o) => !o.includes('(dev)')), `no dev accounts on a live chain: ${options}`);
  assert.ok(options.some((o) => o.startsWith('Dave (extension)')), `the extension's account is offered: ${options}`);
  assert.equal(await page.inputValue('#account'), dave.address);

  // A top-up of the pending deal, signed by the extension.
  const card = `[data-deal="${pendingId}"]`;
  await page.waitForSelector(card);
  const escrowBefore = (await api.query.market.deployments(pendingId)).unwrap().escrow.toBigInt();
  await page.fill(`${card} input[placeholder="10"]`, '2');
  await page.click(`${card} >> text=Top up`);
  await page.click('#confirm-sign');
  await page.waitForSelector(`${card} .status.ok`, { timeout: 30_000 });
  assert.equal(signed.length, 1, 'the extension signed it');
  assert.equal(signed[0].address, dave.address);
  const escrowAfter = (await api.query.market.deployments(pendingId)).unwrap().escrow.toBigInt();
  assert.equal(escrowAfter - escrowBefore, 2n * 10n ** 12n, 'the top-up landed');

  // Once the acceptance timeout passed, the card offers Cancel; the extension signs it too.
  const cancellableFrom = pendingCreatedAt + api.consts.market.acceptanceTimeout.toNumber();
  await page.waitForSelector(`${card} >> text=Cancel deal`, { timeout: 180_000 });
  const best = (await api.rpc.chain.getHeader()).number.toNumber();
  assert.ok(best + 1 >= cancellableFrom, `offered at #${best}, cancellable from #${cancellableFrom}`);
  await page.screenshot({ path: join(shots, 'deals-pending.png'), fullPage: true });
  await page.click(`${card} >> text=Cancel deal`);
  assert.match(await page.textContent('#confirm-call'), /^market\.cancelDeployment\(/);
  await page.click('#confirm-sign');
  await page.waitForFunction((card) => !document.querySelector(card) || /cancelled/.test(document.querySelector(`${card} .status`)?.textContent ?? ''), card, { timeout: 60_000 });
  assert.equal(signed.length, 2);
  assert.ok((await api.query.market.deployments(pendingId)).isNone, 'the deal is gone');
  assert.deepEqual(page.errors, []);
  await context.close();
});

/** Passes the page's RPC traffic to the node, answering `system_chainType` with `Live`. */
function routeAsLiveChain (ws) {
  const server = ws.connectToServer();
  const asked = new Set();
  ws.onMessage((message) => {
    try {
      const request = JSON.parse(message);
      if (request.method === 'system_chainType') asked.add(request.id);
    } catch {}
    server.send(message);
  });
  server.onMessage((message) => {
    try {
      const response = JSON.parse(message);
      if (asked.has(response.id)) { asked.delete(response.id); response.result = 'Live'; message = JSON.stringify(response); }
    } catch {}
    ws.send(message);
  });
}

test('the local API refuses other hosts, other origins and requests without the token', async () => {
  const host = `127.0.0.1:${consolePort}`;
  const page = await raw('GET', '/', { host });
  assert.equal(page.status, 200);
  // Anyone on this machine can read the page: it never holds the token.
  const token = consoleToken;
  assert.ok(!page.text.includes(token));
  assert.equal(page.headers['access-control-allow-origin'], undefined);
  const check = (headers, method = 'POST') => raw(method, '/api/manifest/check', headers, WEB);
  assert.equal((await check({ host, 'x-podchain-token': token })).status, 200);
  assert.equal((await check({ host, 'x-podchain-token': token, origin: `http://${host}` })).status, 200);
  // DNS rebinding: another name for 127.0.0.1 gets neither the page nor the API.
  assert.equal((await raw('GET', '/', { host: `evil.example:${consolePort}` })).status, 403);
  assert.equal((await check({ host: `evil.example:${consolePort}`, 'x-podchain-token': token })).status, 403);
  // Another page: no token, a wrong one, or the right one from another origin.
  assert.equal((await check({ host })).status, 403);
  assert.equal((await check({ host, 'x-podchain-token': '0'.repeat(64) })).status, 403);
  assert.equal((await check({ host, 'x-podchain-token': token, origin: 'http://evil.example' })).status, 403);
  // A CORS preflight is never granted.
  const preflight = await raw('OPTIONS', '/api/manifest/check', { host, origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-podchain-token' });
  assert.equal(preflight.status, 405);
  assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  // And a real foreign page in the browser cannot deliver or read logs.
  const foreign = await browser.newPage();
  await foreign.goto('data:text/html,<title>elsewhere</title>');
  const outcome = await foreign.evaluate(async (url) => {
    try {
      const res = await fetch(`${url}api/deals/0/logs`, { headers: { 'x-podchain-token': 'guess' } });
      return `answered ${res.status}`;
    } catch (e) { return 'blocked'; }
  }, consoleBase);
  assert.equal(outcome, 'blocked');
  await foreign.close();
});
