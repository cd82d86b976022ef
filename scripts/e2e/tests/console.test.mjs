// The web console (`podchain console`) in Debian's chromium, driven by playwright-core, against a
// real dev node, a provider agent on podman and the CLI's local server: the provider is listed,
// the web fixture is deployed, runs and is billed, topped up, named, its logs read, and closed.
// Every view is screenshotted (under $CONSOLE_SCREENSHOTS, default the test's temporary
// directory), checked for console errors, keyboard reachability and axe's WCAG 2 A/AA rules.
// The local server's refusals of other origins, hosts and token-less requests are checked too.
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
import { freePorts, PodchainNode, waitFor } from '../lib/node.mjs';

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
  await watcher.waitForSelector('#deals #no-deals');

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
  await checkView(page, 'deals');

  // Provider: //Charlie's view of the same deal.
  const charlie = await page.evaluate(() => [...document.querySelectorAll('#account option')].find((o) => o.textContent.startsWith('Charlie'))?.value);
  await page.selectOption('#account', charlie);
  await page.click('nav a[href="#/provider"]');
  await page.waitForSelector('#provider-status');
  assert.match(await page.textContent('#provider'), new RegExp(`Its deals[\\s\\S]*${id}`));
  // Earnings by finalized block: a line once two blocks were seen.
  await page.waitForSelector('#provider svg polyline', { timeout: 30_000 });
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
