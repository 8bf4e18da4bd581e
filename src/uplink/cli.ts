import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { CliIo } from '../cli/program.js';
import { loadConfig } from '../config/load.js';
import { OutpostError } from '../errors/outpost-error.js';
import { Queue } from '../store/queue.js';
import type { MqttUpstreamConfig } from './schema.js';

async function storeDir(configFile: string): Promise<string> {
  const { config } = await loadConfig(configFile);
  if (config.upstream.type !== 'mqtt') throw new OutpostError('OUTPOST_E_CLI_USAGE', 'this configuration has no MQTT uplink (upstream.type is not mqtt)', { details: { file: configFile } });
  const s = (config.upstream as MqttUpstreamConfig).store;
  return s.dir ? path.resolve(config.gateway.dataDir, s.dir) : path.join(config.gateway.dataDir, 'store');
}

async function readLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** `outpost uplink …`: look at the store of a gateway (works while it runs or not). Errors propagate to runCli (exit code 2 for bad input). */
export function uplinkCli(program: Command, io: CliIo): void {
  const up = program.command('uplink').description('inspect the MQTT uplink store and quarantine');
  up.command('store')
    .description('show the records waiting in the store, per route and priority')
    .requiredOption('-c, --config <file>', 'configuration file')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const dir = await storeDir(opts.config);
      const rows: Array<{ route: string; priority: number; segments: number; bytes: number }> = [];
      let names: string[] = [];
      try {
        names = await readdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      for (const n of names.sort()) {
        const id = Queue.parseDirName(n);
        if (!id) continue;
        const segs = (await readdir(path.join(dir, n))).filter((f) => f.endsWith('.seg'));
        let bytes = 0;
        for (const f of segs) bytes += (await stat(path.join(dir, n, f))).size;
        rows.push({ route: id.route, priority: id.priority, segments: segs.length, bytes });
      }
      if (opts.json) io.out(JSON.stringify({ dir, queues: rows }, null, 2));
      else {
        io.out(`store ${dir}`);
        if (rows.length === 0) io.out('  (empty)');
        for (const r of rows) io.out(`  ${r.route.padEnd(24)} priority ${r.priority}  ${String(r.segments).padStart(4)} segments  ${(r.bytes / 1024).toFixed(1).padStart(10)} KiB`);
      }
    });
  up.command('quarantine')
    .description('print the records the broker refused or that failed too often (JSON lines, oldest first)')
    .requiredOption('-c, --config <file>', 'configuration file')
    .action(async (opts: { config: string }) => {
      const dir = await storeDir(opts.config);
      const file = path.join(dir, 'quarantine.ndjson');
      const lines = [...(await readLines(`${file}.1`)), ...(await readLines(file))];
      for (const l of lines) io.out(l);
      if (lines.length === 0) io.err(`no quarantined records (${file})`);
    });
}
