import v8 from 'node:v8';
import vm from 'node:vm';
import type { GcFunction } from '../src/health/gc-pacer.js';

/**
 * V8's gc(), for the GcPacer: `--expose-gc` when the process was started with it, otherwise the flag is
 * set now and gc() taken from a fresh context (V8 installs it in contexts created after the flag is
 * set). Null when neither works; the pacer then does nothing.
 */
export function exposeGc(): GcFunction | null {
  const existing = (globalThis as { gc?: GcFunction }).gc;
  if (typeof existing === 'function') return existing;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    return null;
  }
}
