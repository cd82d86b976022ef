// Starts podchain nodes on loopback for end-to-end tests and talks to them over JSON-RPC.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/** Path of the node binary: $PODCHAIN_NODE, else the shared cargo target dir's release build. */
export function nodeBinary () {
  if (process.env.PODCHAIN_NODE) return process.env.PODCHAIN_NODE;
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/podchain/target');
  return join(target, 'release/podchain-node');
}

/**
 * `count` distinct TCP ports on 127.0.0.1 that are free right now. All are held open until
 * every one is chosen, so one call never returns the same port twice.
 */
export async function freePorts (count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes. Errors from `check` count
 * as "not yet", except those marked `fatal`, which end the wait at once.
 */
export async function waitFor (what, check, { timeoutMs = 60_000, intervalMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      if (err.fatal) throw err;
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : ''}`);
}

/** One JSON-RPC call over HTTP. */
export async function rpc (port, method, params = []) {
  const res = await fetch(`http://127.0.0.1:${port}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(5_000)
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/** Number of the best or finalized block of the node at `port`. */
export async function blockNumber (port, which = 'best') {
  const hash = which === 'finalized' ? await rpc(port, 'chain_getFinalizedHead') : undefined;
  const header = await rpc(port, 'chain_getHeader', hash ? [hash] : []);
  return parseInt(header.number, 16);
}

/**
 * A podchain node process bound to 127.0.0.1. `args` are extra flags (`--dev`, `--chain local
 * --alice`, ...). Its output goes to a log file, whose tail `describe()` returns for failures.
 */
export class PodchainNode {
  constructor ({ name, args, basePath }) {
    this.name = name;
    this.args = args;
    this.basePath = basePath || mkdtempSync(join(tmpdir(), `podchain-${name}-`));
    this.logPath = join(this.basePath, 'node.log');
  }

  /** Starts the node (again, on the same ports and database, after `stop()`). */
  async start () {
    if (!this.rpcPort) [this.rpcPort, this.p2pPort, this.prometheusPort] = await freePorts(3);
    const args = [
      ...this.args,
      '--base-path', this.basePath,
      '--name', this.name,
      '--no-mdns',
      '--no-telemetry',
      '--listen-addr', `/ip4/127.0.0.1/tcp/${this.p2pPort}`,
      '--rpc-port', String(this.rpcPort),
      '--prometheus-port', String(this.prometheusPort),
      '--rpc-cors', 'all'
    ];
    const log = createWriteStream(this.logPath, { flags: 'a' });
    const proc = spawn(nodeBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = proc;
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    this.exited = new Promise((resolve) => proc.once('close', resolve));
    let spawnError;
    proc.once('error', (err) => { spawnError = err; });
    try {
      await waitFor(`${this.name} to answer RPC on 127.0.0.1:${this.rpcPort}`, async () => {
        if (spawnError) throw Object.assign(spawnError, { fatal: true });
        if (proc.exitCode !== null || proc.signalCode !== null) {
          await this.exited;
          const how = proc.exitCode ?? proc.signalCode;
          throw Object.assign(new Error(`${this.name} exited (${how})\n${this.describe()}`), { fatal: true });
        }
        return rpc(this.rpcPort, 'system_health');
      }, { timeoutMs: 120_000 });
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  /** The node's libp2p address, to pass as a bootnode to others. */
  async multiaddr () {
    const peerId = await rpc(this.rpcPort, 'system_localPeerId');
    return `/ip4/127.0.0.1/tcp/${this.p2pPort}/p2p/${peerId}`;
  }

  get wsUrl () {
    return `ws://127.0.0.1:${this.rpcPort}`;
  }

  /** Stops the node: SIGTERM, then SIGKILL if it is still running after 20 s. */
  async stop () {
    const proc = this.process;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }

  describe () {
    let tail = '';
    try {
      tail = readFileSync(this.logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch {}
    return `--- last lines of ${this.logPath} ---\n${tail}`;
  }
}
