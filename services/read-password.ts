import { OutpostError } from '../src/errors/outpost-error.js';

/**
 * Reads a password for `outpost broker passwd`: on a terminal it asks twice with echo off; from a pipe it
 * takes the first line (`printf '%s\n' "$PW" | outpost broker passwd`). At most 1 KiB is read.
 */
export async function readPassword(stdin: NodeJS.ReadStream = process.stdin, prompt: NodeJS.WriteStream = process.stderr): Promise<string> {
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.length > 1024 || text.includes('\n')) break;
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line.length > 512) throw new OutpostError('OUTPOST_E_CLI_USAGE', 'password longer than 512 characters');
    return line;
  }
  const ask = (question: string) =>
    new Promise<string>((resolve) => {
      prompt.write(question);
      stdin.setRawMode(true);
      stdin.resume();
      let text = '';
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            stdin.setRawMode(false);
            stdin.pause();
            prompt.write('\n');
            return resolve(text);
          }
          if (ch === '\u0003') {
            stdin.setRawMode(false);
            process.exit(130);
          }
          text = ch === '\u007f' ? text.slice(0, -1) : text + ch;
        }
      };
      stdin.on('data', onData);
    });
  const first = await ask('Password: ');
  const again = await ask('Again: ');
  if (first !== again) throw new OutpostError('OUTPOST_E_CLI_USAGE', 'the two passwords differ');
  return first;
}
