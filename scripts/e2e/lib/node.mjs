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

/** A TCP port on 127.0.0.1 that is free right now. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
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
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })
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

  async start () {
    this.rpcPort ||= await freePort();
    this.p2pPort ||= await freePort();
    this.prometheusPort ||= await freePort();
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
    this.process = spawn(nodeBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process.stdout.pipe(log);
    this.process.stderr.pipe(log);
    this.exited = new Promise((resolve) => this.process.on('exit', resolve));
    await waitFor(`${this.name} to answer RPC on 127.0.0.1:${this.rpcPort}`, async () => {
      if (this.process.exitCode !== null) {
        await this.exited;
        throw Object.assign(new Error(`${this.name} exited with ${this.process.exitCode}\n${this.describe()}`), { fatal: true });
      }
      return rpc(this.rpcPort, 'system_health');
    }, { timeoutMs: 120_000 });
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

  async stop () {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill('SIGTERM');
    const timeout = sleep(20_000).then(() => this.process.kill('SIGKILL'));
    await Promise.race([this.exited, timeout]);
    await this.exited;
  }

  describe () {
    let tail = '';
    try {
      tail = readFileSync(this.logPath, 'utf8').split('\n').slice(-40).join('\n');
    } catch {}
    return `--- last lines of ${this.logPath} ---\n${tail}`;
  }
}
