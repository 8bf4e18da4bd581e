import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * sha256 over a directory tree: sorted relative paths, file type, mode bits, symlink targets and contents.
 * Times and owners are left out (the build sets them), so a fresh checkout hashes like the original.
 */
export function sha256Tree(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = path.join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) h.update(`l ${r} ${readlinkSync(abs)}\n`);
      else if (st.isDirectory()) {
        h.update(`d ${r}\n`);
        walk(abs, r);
      } else {
        // Only the executable bit is meaningful in git; the rest depends on the umask of the checkout.
        h.update(`f ${r} ${st.mode & 0o100 ? 'x' : '-'} ${createHash('sha256').update(readFileSync(abs)).digest('hex')}\n`);
      }
    }
  };
  walk(root, '');
  return h.digest('hex');
}

/** sha256 over named parts (each a string), order-sensitive: the cache key of a stage. */
export function combine(parts: ReadonlyArray<readonly [string, string]>): string {
  const h = createHash('sha256');
  for (const [k, v] of parts) h.update(`${k}=${v}\n`);
  return h.digest('hex');
}
