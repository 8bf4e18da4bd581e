import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../errors/outpost-error.js';
import type { PathKind } from './source-read.js';

/** Kernel pseudo file systems: nothing of Outpost's state belongs there (and mkdir -p loops forever under /proc). */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];

/** The pseudo file system a path lies on, or null. */
export function pseudoFsOf(p: string): string | null {
  const abs = path.resolve(p);
  return PSEUDO_ROOTS.find((r) => abs === r || abs.startsWith(`${r}/`)) ?? null;
}

/**
 * What is wrong with `dir` as a data directory without changing anything: running through something
 * that is not a directory (`/etc/passwd/sub`); pseudo file systems are a semantic check (checkSystemSemantics). Walks up from `dir` to
 * the first thing that exists (at most one step per path component). Null when it looks usable.
 */
export async function inspectDataDir(dir: string, kind: (p: string) => Promise<PathKind>): Promise<string | null> {
  const abs = path.resolve(dir);
  if (pseudoFsOf(abs)) return null; // reported by the semantic checks
  for (let p = abs, i = 0; i < 4096; p = path.dirname(p), i++) {
    const k = await kind(p);
    if (k === 'dir') return null;
    if (k !== null) return p === abs ? `${abs} exists and is not a directory` : `${abs} runs through ${p}, which is not a directory`;
    if (p === path.dirname(p)) return null;
  }
  return null;
}

/**
 * Makes sure `dir` exists and is writable before anything else starts: creates the missing
 * components one by one (never `mkdir -p`, which busy-loops when the kernel answers ENOENT for a
 * directory that exists, as under /proc), then writes and removes a probe file.
 * Throws OUTPOST_E_CONFIG_DATA_DIR naming the path and chaining the system error.
 */
export async function prepareDataDir(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  const pseudo = pseudoFsOf(abs);
  if (pseudo) throw new OutpostError('OUTPOST_E_CONFIG_DATA_DIR', `gateway.dataDir ${abs} is on the kernel's ${pseudo} pseudo file system`, { details: { dataDir: abs } });
  const missing: string[] = [];
  for (let p = abs, i = 0; i < 4096; p = path.dirname(p), i++) {
    let st: Awaited<ReturnType<typeof stat>> | null;
    try {
      st = await stat(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        throw new OutpostError('OUTPOST_E_CONFIG_DATA_DIR', `gateway.dataDir ${abs} cannot be used: ${p} cannot be examined`, { cause: e, details: { dataDir: abs, at: p } });
      }
      st = null;
    }
    if (st && !st.isDirectory()) {
      throw new OutpostError('OUTPOST_E_CONFIG_DATA_DIR', `gateway.dataDir ${abs} cannot be used: ${p} is not a directory`, { details: { dataDir: abs, at: p } });
    }
    if (st) break;
    missing.unshift(p);
    if (p === path.dirname(p)) break;
  }
  for (const p of missing) {
    try {
      await mkdir(p, { mode: 0o750 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(p).catch(() => null))?.isDirectory()) continue;
      throw new OutpostError('OUTPOST_E_CONFIG_DATA_DIR', `gateway.dataDir ${abs} cannot be created at ${p}`, { cause: e, details: { dataDir: abs, at: p } });
    }
  }
  const probe = path.join(abs, `.outpost-write-probe-${process.pid}`);
  try {
    await writeFile(probe, 'probe\n', { flag: 'wx' });
  } catch (e) {
    throw new OutpostError('OUTPOST_E_CONFIG_DATA_DIR', `gateway.dataDir ${abs} is not writable`, { cause: e, details: { dataDir: abs } });
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
}
