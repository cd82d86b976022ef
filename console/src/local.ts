// The local API of `podchain console`: what a browser cannot do itself, with the CLI's key.

import { localToken } from './chain';

export const hasLocalApi = localToken !== '';

async function call<T> (method: 'GET' | 'POST', path: string, body?: string): Promise<T> {
  if (!hasLocalApi) throw new Error('this needs `podchain console` (a static console has no local API)');
  const res = await fetch(`/api/${path}`, {
    method,
    headers: { 'x-podchain-token': localToken, 'content-type': 'text/plain' },
    body
  });
  const value = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(value.error ?? `HTTP ${res.status}`);
  return value as T;
}

export interface ManifestCheck { resources: { cpuMillicores: number; memoryMib: number; storageGib: number; gpus: number }; hash: string }
export interface LogLine { container: string; timestampMs: number; stderr: boolean; text: string }

export const session = () => call<{ account: string | null }>('GET', 'session');
/** The manifest's resources and hash, checked with the CLI's rules; throws its errors (`line:column: ...`). */
export async function checkManifest (text: string): Promise<ManifestCheck> {
  const result = await call<ManifestCheck & { valid: boolean; error?: string }>('POST', 'manifest/check', text);
  if (!result.valid) throw new Error(result.error ?? 'invalid manifest');
  return result;
}
export const deliverManifest = (id: number, text: string) => call<{ delivered: boolean; peer: string }>('POST', `deals/${id}/manifest`, text);
export const logs = (id: number, tail = 100) => call<{ lines: LogLine[]; status: string | null }>('GET', `deals/${id}/logs?tail=${tail}`);
