import type { BundleInfo } from './bundle/bundle.js';
import type { OtaProgress } from './flow/engine.js';
import type { BundleVerdict, InfoCheck } from './info.js';
import type { OtaStatus } from './system.js';

const MiB = 1024 * 1024;

/**
 * Renders OTA progress for a terminal: a redrawn bar on a TTY, one line per 10 % and per state
 * otherwise (journald, CI logs). Invariants: never writes more than one line per 100 ms on a TTY.
 */
export class ProgressBar {
  private lastDraw = 0;
  private lastLine = '';
  private lastDecile = -1;
  private lastState = '';

  constructor(
    private readonly write: (s: string) => void,
    private readonly tty: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  update(p: OtaProgress): void {
    const pct = p.percent ?? 0;
    const d = p.detail ?? {};
    const done = typeof d['done'] === 'number' ? d['done'] : null;
    const total = typeof d['total'] === 'number' ? d['total'] : null;
    const rate = typeof d['bytesPerSec'] === 'number' ? ` ${(d['bytesPerSec'] / MiB).toFixed(0)} MiB/s` : '';
    const phase = typeof d['phase'] === 'string' ? ` ${d['phase']}` : '';
    const bytes = done !== null ? ` ${(done / MiB).toFixed(0)}${total !== null ? `/${(total / MiB).toFixed(0)}` : ''} MiB` : '';
    const label = p.state === 'deferred' ? `deferred: ${String(d['reason'] ?? '')}` : `${p.state}${phase}${bytes}${rate}`;
    if (this.tty) {
      const t = this.now();
      if (t - this.lastDraw < 100 && pct < 100 && p.state === this.lastState) return;
      this.lastDraw = t;
      this.lastState = p.state;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(pct).padStart(3)}% ${label}`;
      this.write(`\r${line.padEnd(this.lastLine.length)}`);
      this.lastLine = line;
    } else {
      const decile = Math.floor(pct / 10);
      if (decile === this.lastDecile && p.state === this.lastState) return;
      this.lastDecile = decile;
      this.lastState = p.state;
      this.write(`${String(pct).padStart(3)}% ${label}\n`);
    }
  }

  end(): void {
    if (this.tty && this.lastLine) this.write('\n');
  }
}

function ago(ms: number, now: number): string {
  const s = Math.round((now - ms) / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** Human-readable `outpost ota status`. */
export function renderStatus(s: OtaStatus, now: number): string {
  const u = s.update;
  const lines = [
    `compatible:  ${s.compatible}`,
    `booted:      ${s.booted ?? 'unknown'}    primary: ${s.primary ?? 'none'}    bootloader: ${s.bootloader.kind}`,
    '',
    'SLOT  STATE  VERSION          BOOTED  PRIMARY  DEVICES',
    ...s.slots.map(
      (r) =>
        `${r.bootname.padEnd(5)} ${r.state.padEnd(6)} ${(r.version ?? '-').padEnd(16)} ${(r.booted ? 'yes' : '').padEnd(7)} ${(r.primary ? 'yes' : '').padEnd(8)} ${Object.entries(r.devices)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
    ),
    '',
    `update:      ${u.state}${u.bundle ? ` (bundle ${u.bundle.version} → slot ${u.target ?? '?'})` : ''}   [state version ${u.version}]`,
  ];
  if (u.request) lines.push(`source:      ${u.request.source}`);
  if (u.committed) lines.push(`committed:   slot ${u.committed.bootname}${u.committed.version ? ` version ${u.committed.version}` : ''}, ${ago(u.committed.at, now)}`);
  if (u.deferred) lines.push(`deferred:    ${u.deferred}${u.retryAt ? ` (retry ${ago(u.retryAt, now).replace(' ago', '')})` : ''}`);
  if (u.lastError) lines.push(`last error:  ${u.lastError.code} in ${u.lastError.state}: ${u.lastError.message} (${ago(u.lastError.at, now)})`);
  lines.push(`security version: ${s.securityVersion}`);
  if (s.locks.length > 0) lines.push(`update lock: held by ${s.locks.map((l) => `${l.name} (pid ${l.pid}${l.reason ? `, ${l.reason}` : ''})`).join(', ')}`);
  lines.push('', 'bootloader variables:', ...Object.entries(s.bootloader.vars).map(([k, v]) => `  ${k}=${v}`));
  return lines.join('\n');
}

/** Human-readable `outpost ota info`: the manifest, one line per check, and what install would do. */
export function renderInfo(file: string, info: BundleInfo, verdict: BundleVerdict): string {
  const m = info.manifest;
  const width = Math.max(...verdict.checks.map((c) => c.check.length));
  const result = (c: InfoCheck) => (c.result === 'refused' ? `REFUSED  ${c.code ?? ''}: ${c.detail}` : `${c.result.padEnd(8)} ${c.detail}`);
  const unchecked = verdict.checks.filter((c) => c.result === 'unchecked').map((c) => c.check);
  const install =
    verdict.refusals.length > 0
      ? `would refuse this bundle (${[...new Set(verdict.refusals.map((r) => r.code))].join(', ')})`
      : verdict.checks.some((c) => c.check === 'device')
        ? 'not checked against a device (give -c <config> or --compatible)'
        : `no refusal found${unchecked.length > 0 ? `; not checked: ${[...new Set(unchecked)].join(', ')}` : ''}`;
  return [
    `bundle:      ${file} (${info.format}, ${info.size} bytes, squashfs ${info.compressor})`,
    `compatible:  ${m.compatible}`,
    `version:     ${m.version}${m.securityVersion > 0n ? ` (security version ${m.securityVersion})` : ''}`,
    `signed by:   ${info.chain.join(' <- ')}${info.signingTime ? ` at ${info.signingTime.toISOString()}` : ''}`,
    ...m.images.map((i) => `image:       ${i.slotClass}${i.variant ? `.${i.variant}` : ''} ${i.filename} ${i.size} bytes sha256 ${i.sha256}`),
    'checks:',
    ...verdict.checks.map((c) => `  ${c.check.padEnd(width)}  ${result(c)}`),
    `install:     ${install}`,
  ].join('\n');
}
