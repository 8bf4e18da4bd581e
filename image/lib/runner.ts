import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** Runs one stage command with its output in a log file; rejects with the log's tail on failure. */
export type StageCommand = (stage: string, cmd: string, args: readonly string[], opts: { env: NodeJS.ProcessEnv; logFile: string; heartbeat?: (line: string) => void }) => Promise<void>;

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

/** The real command runner: a child process, stdout+stderr appended to logFile, a heartbeat every 30 s. */
export const spawnStage: StageCommand = (stage, cmd, args, { env, logFile, heartbeat }) =>
  new Promise<void>((resolve, reject) => {
    const log = createWriteStream(logFile, { flags: 'a' });
    let tail = '';
    const child = spawn(cmd, [...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d: Buffer) => {
      log.write(d);
      tail = (tail + d.toString('utf8')).slice(-4000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = heartbeat ? setInterval(() => heartbeat(lastLine(tail)), 30_000) : undefined;
    child.once('error', (e) => {
      if (timer) clearInterval(timer);
      log.end();
      reject(new OutpostError('OUTPOST_E_IMAGE_STAGE', `image stage ${stage}: cannot run ${cmd}`, { cause: e, details: { stage, logFile } }));
    });
    child.once('close', (code, signal) => {
      if (timer) clearInterval(timer);
      log.end(() => {
        if (code === 0) return resolve();
        let logTail = '';
        try {
          logTail = readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n');
        } catch {
          logTail = tail;
        }
        reject(new OutpostError('OUTPOST_E_IMAGE_STAGE', `image stage ${stage} failed (exit ${code ?? signal}); log: ${logFile}`, { details: { stage, logFile, exitCode: code, signal, logTail } }));
      });
    });
  });
