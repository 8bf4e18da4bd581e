import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../errors/outpost-error.js';

/**
 * The bearer token of the local API: one file in the data directory, created at the first start
 * (32 random bytes, base64url, mode 0600), read by the runtime at every start and by CLI commands.
 * Invariants: the file is created atomically (written under a temporary name, then hard-linked into
 * place, so two starts never see half a token and never overwrite each other); a token file that
 * others can read, or that is not a token, stops the start with OUTPOST_E_API_TOKEN naming the file.
 */

export const API_TOKEN_FILE = 'api-token';
const TOKEN = /^[A-Za-z0-9_-]{32,512}$/;

export function apiTokenPath(dataDir: string): string {
  return path.join(dataDir, API_TOKEN_FILE);
}

function parseToken(text: string, file: string): string {
  const token = text.trim();
  if (!TOKEN.test(token)) {
    throw new OutpostError('OUTPOST_E_API_TOKEN', `${file} does not hold a token (32–512 characters of A-Z a-z 0-9 _ -); delete it and restart to create a new one`, {
      details: { file },
    });
  }
  return token;
}

/** Reads the token file (for CLI commands and the runtime). */
export async function readApiToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new OutpostError('OUTPOST_E_API_TOKEN', `cannot read the API token file ${file}`, { cause: e, details: { file, code: (e as NodeJS.ErrnoException).code } });
  }
  return parseToken(text, file);
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Writes a new token under a temporary name and links it into place unless a token file appeared meanwhile. */
async function createTokenFile(dataDir: string, file: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(`${randomBytes(32).toString('base64url')}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Returns the token of `<dataDir>/api-token`, creating the file (mode 0600) if it does not exist. */
export async function ensureApiToken(dataDir: string): Promise<string> {
  const file = apiTokenPath(dataDir);
  try {
    if (!(await exists(file))) await createTokenFile(dataDir, file);
  } catch (e) {
    throw new OutpostError('OUTPOST_E_API_TOKEN', `cannot create the API token file ${file}`, { cause: e, details: { file, code: (e as NodeJS.ErrnoException).code } });
  }
  const st = await lstat(file).catch((e: unknown) => {
    throw new OutpostError('OUTPOST_E_API_TOKEN', `cannot read the API token file ${file}`, { cause: e, details: { file } });
  });
  if (!st.isFile() || (st.mode & 0o077) !== 0) {
    throw new OutpostError('OUTPOST_E_API_TOKEN', `the API token file ${file} must be a regular file only its owner can read; chmod 600 it (or delete it to create a new one)`, {
      details: { file, mode: (st.mode & 0o777).toString(8) },
    });
  }
  return readApiToken(file);
}
