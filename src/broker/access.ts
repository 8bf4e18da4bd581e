import { OutpostError, isOutpostError } from '../errors/outpost-error.js';
import { ClientAcl, templateFilter, topicMatches } from './acl.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DEFAULT_SCRYPT, parsePasswordHash, verifyPassword, type ParsedHash } from './passwords.js';
import type { BrokerConfigT } from './schema.js';

/** Who a connected client is and what it may do. */
export interface Identity {
  readonly username: string | null;
  readonly via: 'anonymous' | 'password' | 'certificate';
  readonly acl: ClientAcl;
}

/** MQTT 3.1.1 CONNACK refusal codes used here: 3 server unavailable, 4 bad username or password, 5 not authorized. */
export type Refusal = { readonly refused: 3 | 4 | 5; readonly reason: string };

export interface Credentials {
  readonly username?: string | undefined;
  readonly password?: Buffer | undefined;
  /** CN of a client certificate the TLS listener verified against `broker.tls.ca`. */
  readonly certificateCn?: string | null | undefined;
}

/** A hash that matches no password: unknown users cost one scrypt like known ones (no user enumeration by timing). */
const DUMMY_HASH = `scrypt$${DEFAULT_SCRYPT.N}$${DEFAULT_SCRYPT.r}$${DEFAULT_SCRYPT.p}$${Buffer.alloc(16, 7).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
/** scrypt verifications at once (32 MiB of memory and a thread-pool thread each). */
const MAX_VERIFYING = 1;

/**
 * Authentication and default permissions of the local broker. Invariants: hashes are parsed once, at
 * construction (a malformed one fails the start with OUTPOST_E_BROKER_CONFIG); at most MAX_VERIFYING
 * scrypt verifications run at once and at most `maxQueued` wait, further logins are refused with
 * code 3; a password verified once is recognised again by an HMAC (one per user, the last one that
 * worked) without scrypt; a certificate logs in only as the user its CN names; the gateway's topics are
 * `<prefix>/…` and the topics of `$broker(…)` routes.
 */
export class BrokerAccess {
  private readonly users = new Map<string, { hash: ParsedHash | null; publish: readonly string[]; subscribe: readonly string[] }>();
  private readonly dummy = parsePasswordHash(DUMMY_HASH);
  private verifying = 0;
  private readonly waiting: Array<() => void> = [];
  /** Filters of every topic only the gateway publishes on. */
  readonly gatewayTopics: readonly string[];
  private readonly anonymousSubscribe: readonly string[];
  /** HMAC (random per-process key) of each user's last verified password: a reconnecting application costs no scrypt. */
  private readonly verified = new Map<string, Buffer>();
  private readonly cacheKey = randomBytes(32);

  constructor(
    private readonly config: BrokerConfigT,
    routeTopics: readonly string[],
    private readonly maxQueued: number,
  ) {
    const prefix = config.topicPrefix;
    const routes = routeTopics.map(templateFilter);
    this.gatewayTopics = [`${prefix}/#`, prefix, ...routes];
    const gatewayRead = ['{prefix}/readings/#', '{prefix}/events/#', '{prefix}/status', ...routes];
    this.anonymousSubscribe = config.anonymous.subscribe ?? gatewayRead;
    config.users.forEach((u, i) => {
      let hash: ParsedHash | null = null;
      try {
        hash = u.passwordHash === undefined ? null : parsePasswordHash(u.passwordHash);
      } catch (e) {
        if (!isOutpostError(e)) throw e;
        throw new OutpostError('OUTPOST_E_BROKER_CONFIG', `broker.users[${i}].passwordHash is not usable`, { cause: e, details: { user: u.username } });
      }
      const subscribe = u.subscribe ?? [...gatewayRead, '{prefix}/system/#', '{prefix}/commands/result/#', '{prefix}/replies/{username}/#'];
      this.users.set(u.username, { hash, publish: u.publish, subscribe });
    });
  }

  /** Decides a CONNECT. Never throws. */
  async authenticate(c: Credentials): Promise<Identity | Refusal> {
    const prefix = this.config.topicPrefix;
    if (c.certificateCn) {
      const u = this.users.get(c.certificateCn);
      if (!u) return { refused: 5, reason: 'certificate names no configured user' };
      if (c.username !== undefined && c.username !== c.certificateCn) return { refused: 4, reason: 'username differs from the certificate' };
      return { username: c.certificateCn, via: 'certificate', acl: new ClientAcl(c.certificateCn, u.publish, u.subscribe, prefix) };
    }
    if (c.username === undefined) {
      if (!this.config.anonymous.enabled) return { refused: 5, reason: 'anonymous clients are not accepted' };
      return { username: null, via: 'anonymous', acl: new ClientAcl(null, this.config.anonymous.publish, this.anonymousSubscribe, prefix) };
    }
    const u = this.users.get(c.username);
    const mac = createHmac('sha256', this.cacheKey).update(c.username).update('\0').update(c.password ?? Buffer.alloc(0)).digest();
    const known = this.verified.get(c.username);
    if (u?.hash && c.password !== undefined && known && timingSafeEqual(known, mac)) {
      return { username: c.username, via: 'password', acl: new ClientAcl(c.username, u.publish, u.subscribe, prefix) };
    }
    const ok = await this.verify(c.password ?? Buffer.alloc(0), u?.hash ?? this.dummy);
    if (ok === null) return { refused: 3, reason: 'too many logins at once' };
    if (!u || !u.hash || !ok || c.password === undefined) return { refused: 4, reason: 'bad username or password' };
    this.verified.set(c.username, mac);
    return { username: c.username, via: 'password', acl: new ClientAcl(c.username, u.publish, u.subscribe, prefix) };
  }

  /** Is `topic` one only the gateway publishes on? */
  isGatewayTopic(topic: string): boolean {
    const prefix = this.config.topicPrefix;
    if (topic === prefix || topic.startsWith(`${prefix}/`)) return true;
    return this.gatewayTopics.some((f) => topicMatches(f, topic));
  }

  private async verify(password: Buffer, hash: ParsedHash): Promise<boolean | null> {
    if (this.verifying < MAX_VERIFYING) this.verifying++;
    else if (this.waiting.length >= this.maxQueued) return null;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await verifyPassword(password, hash);
    } catch {
      return false;
    } finally {
      // Hand the slot to the next waiter, or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.verifying--;
    }
  }
}
