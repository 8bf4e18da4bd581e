import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { EnvGuard } from '../boot/boot-file.js';
import type { FlowEvent, FlowState } from './states.js';

export interface BundleSummary {
  readonly version: string;
  readonly compatible: string;
  readonly securityVersion: string;
  readonly format: string;
  readonly signer: string;
  readonly images: ReadonlyArray<{ slotClass: string; filename: string; sha256: string; size: number }>;
}

/** The persisted update flow. Every save increments `version`; `format` versions the layout. */
export interface FlowRecord {
  readonly format: 1;
  readonly version: number;
  readonly state: FlowState;
  readonly updateId: string | null;
  readonly request: { readonly source: string; readonly sha256?: string; readonly version?: string; readonly origin: string; readonly reboot?: boolean } | null;
  readonly bundlePath: string | null;
  /** Slot running when the update started, and the slot being updated. */
  readonly booted: string | null;
  readonly target: string | null;
  readonly bundle: BundleSummary | null;
  /** Boot id when reboot-pending was entered / when the current trial boot was counted. */
  readonly bootId: string | null;
  readonly switched: boolean;
  readonly transitions: number;
  readonly resumes: number;
  readonly trialBoots: number;
  readonly lateRecoveries: number;
  readonly retryAt: number | null;
  readonly deferred: string | null;
  readonly lastError: { readonly code: string; readonly message: string; readonly state: FlowState; readonly at: number } | null;
  /** The slot that should be running and its version (set on commit and on rollback). */
  readonly committed: { readonly bootname: string; readonly version: string | null; readonly at: number } | null;
  readonly slots: Readonly<Record<string, { readonly version: string; readonly installedAt: number }>>;
  readonly history: ReadonlyArray<{ readonly from: FlowState; readonly event: FlowEvent; readonly to: FlowState; readonly at: number; readonly version: number }>;
}

export function initialRecord(): FlowRecord {
  return {
    format: 1,
    version: 0,
    state: 'idle',
    updateId: null,
    request: null,
    bundlePath: null,
    booted: null,
    target: null,
    bundle: null,
    bootId: null,
    switched: false,
    transitions: 0,
    resumes: 0,
    trialBoots: 0,
    lateRecoveries: 0,
    retryAt: null,
    deferred: null,
    lastError: null,
    committed: null,
    slots: {},
    history: [],
  };
}

const HISTORY = 32;

function checksum(json: string): string {
  return createHash('sha256').update(json).digest('hex');
}

/**
 * The flow record on disk (`<dataDir>/state.json`), shared by every OTA process (agent, mark-good,
 * resume, the CLI). Invariants: a save is atomic (temp, fsync, rename, directory fsync) and carries a
 * sha256 of the record, so a reader sees a whole previous or whole new record, and detects a damaged one;
 * `version` strictly increases across saves; a save is a compare-and-swap under the OTA state lock: it
 * writes only when the record on disk still has the version the caller read (else
 * OUTPOST_E_OTA_STATE_CONFLICT), so no process writes back a record another process has moved on from.
 */
export class FlowStore {
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly guard: EnvGuard = { with: (fn) => fn() },
  ) {
    this.file = path.join(dataDir, 'state.json');
  }

  async load(): Promise<FlowRecord> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return initialRecord();
      throw new OutpostError('OUTPOST_E_OTA_STATE', `cannot read ${this.file}`, { cause: e, details: { file: this.file } });
    }
    let doc: { checksum?: unknown; record?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch (e) {
      throw new OutpostError('OUTPOST_E_OTA_STATE', `${this.file} is not valid JSON (damaged)`, { cause: e, details: { file: this.file } });
    }
    const json = JSON.stringify(doc.record);
    if (typeof doc.checksum !== 'string' || checksum(json) !== doc.checksum) {
      throw new OutpostError('OUTPOST_E_OTA_STATE', `${this.file} fails its checksum (damaged)`, { details: { file: this.file } });
    }
    const rec = doc.record as FlowRecord;
    if (rec.format !== 1) throw new OutpostError('OUTPOST_E_OTA_STATE', `${this.file} has unknown format ${String(rec.format)}`, { details: { file: this.file } });
    return { ...initialRecord(), ...rec };
  }

  /** Persists `rec` with version+1 if the record on disk is still version `rec.version`; returns what was written. */
  async save(rec: FlowRecord): Promise<FlowRecord> {
    return this.guard.with(async () => {
      const onDisk = await this.load().catch(() => null); // a damaged record has nothing to protect
      if (onDisk !== null && onDisk.version !== rec.version) {
        throw new OutpostError('OUTPOST_E_OTA_STATE_CONFLICT', `the update state moved on to version ${onDisk.version} (state ${onDisk.state}) since version ${rec.version} was read`, {
          details: { read: rec.version, onDisk: onDisk.version, state: onDisk.state },
        });
      }
      return this.write(rec);
    });
  }

  /** Read-modify-write of the current record under the lock: `fn` gets the record as it is on disk now; null writes nothing. */
  async update(fn: (current: FlowRecord) => FlowRecord | null): Promise<FlowRecord> {
    return this.guard.with(async () => {
      const current = await this.load();
      const next = fn(current);
      return next === null ? current : this.write({ ...next, version: current.version });
    });
  }

  private async write(rec: FlowRecord): Promise<FlowRecord> {
    const next: FlowRecord = { ...rec, version: rec.version + 1, history: rec.history.slice(-HISTORY) };
    const json = JSON.stringify(next);
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, `${JSON.stringify({ checksum: checksum(json), record: next }, null, 1)}\n`, 0o600);
    return next;
  }
}
