import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { OutpostError } from '../errors/outpost-error.js';

/**
 * Password hashes of local broker users: `scrypt$<N>$<r>$<p>$<salt, base64>$<key, base64>` (node:crypto
 * scrypt, 16-byte salt, 32-byte key). `outpost broker passwd` prints one; the configuration stores only
 * the hash. The cost parameters travel with the hash, bounded so that a configured hash cannot make
 * one verification take more than 64 MiB.
 */
export const PASSWORD_HASH_PATTERN = '^scrypt\\$[0-9]{1,8}\\$[0-9]{1,2}\\$[0-9]{1,2}\\$[A-Za-z0-9+/]{16,64}={0,2}\\$[A-Za-z0-9+/]{40,88}={0,2}$';

/**
 * 32 MiB per verification: above glibc's largest dynamic mmap threshold, so the buffer is always mapped
 * and returned to the system when freed (a 16 MiB one stays in a thread arena: +16 MiB RSS per thread-pool thread).
 */
export const DEFAULT_SCRYPT = { N: 32768, r: 8, p: 1 } as const;
const MAX_MEM = 64 * 1024 * 1024;
const KEY_BYTES = 32;

export interface ParsedHash {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly key: Buffer;
}

function scryptAsync(password: Buffer, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keylen, o, (err, key) => (err ? reject(err) : resolve(key))));
}

/** Parses a stored hash; throws OUTPOST_E_BROKER_CONFIG naming the problem. */
export function parsePasswordHash(text: string): ParsedHash {
  const parts = text.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') {
    throw new OutpostError('OUTPOST_E_BROKER_CONFIG', 'password hash must look like scrypt$N$r$p$salt$key (see `outpost broker passwd`)');
  }
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] as string, 'base64');
  const key = Buffer.from(parts[5] as string, 'base64');
  const powerOfTwo = Number.isInteger(N) && N >= 1024 && (N & (N - 1)) === 0;
  if (!powerOfTwo || !Number.isInteger(r) || r < 1 || !Number.isInteger(p) || p < 1 || 128 * N * r * p > MAX_MEM) {
    throw new OutpostError('OUTPOST_E_BROKER_CONFIG', 'scrypt cost out of range: N a power of two ≥ 1024, r and p ≥ 1, 128·N·r·p ≤ 64 MiB', { details: { N, r, p } });
  }
  if (salt.length < 8 || key.length < 16) throw new OutpostError('OUTPOST_E_BROKER_CONFIG', 'password hash salt or key too short', { details: { salt: salt.length, key: key.length } });
  return { N, r, p, salt, key };
}

/** Hashes a password for the configuration (`users[].passwordHash`). */
export async function hashPassword(password: string, cost: { N: number; r: number; p: number } = DEFAULT_SCRYPT): Promise<string> {
  if (password.length === 0) throw new OutpostError('OUTPOST_E_CLI_USAGE', 'the password is empty');
  const salt = randomBytes(16);
  const key = await scryptAsync(Buffer.from(password, 'utf8'), salt, KEY_BYTES, { ...cost, maxmem: MAX_MEM + 1024 * 1024 });
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Checks a password against a parsed hash in constant time (for equal key lengths). */
export async function verifyPassword(password: Buffer, hash: ParsedHash): Promise<boolean> {
  const key = await scryptAsync(password, hash.salt, hash.key.length, { N: hash.N, r: hash.r, p: hash.p, maxmem: MAX_MEM + 1024 * 1024 });
  return timingSafeEqual(key, hash.key);
}
