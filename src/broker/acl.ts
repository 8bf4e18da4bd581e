/**
 * MQTT topic filters and the access rules of one local broker client. Pure functions, no I/O.
 *
 * A pattern is an MQTT topic filter (`+` one level, `#` the rest) that may hold the placeholders
 * `{prefix}` (the broker's topic prefix) and `{username}` (the authenticated user), expanded once
 * per client. Topics starting with `$` are matched only by patterns that start with `$` themselves
 * ([MQTT-4.7.2-1]): `#` never grants `$SYS/…`.
 */

/** Why a pattern or filter is not a valid MQTT topic filter; null when it is. */
export function filterProblem(filter: string): string | null {
  if (filter === '') return 'is empty';
  if (filter.length > 1024) return 'is longer than 1024 characters';
  if (filter.includes('\0')) return 'holds a NUL character';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i] as string;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return "uses '#' other than as the whole last level";
    if (l.includes('+') && l !== '+') return "uses '+' other than as a whole level";
  }
  return null;
}

/** Does `topic` (no wildcards) match `filter`? */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') !== filter.startsWith('$')) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const fl = f[i] as string;
    if (fl === '#') return true;
    if (i >= t.length) return false;
    if (fl !== '+' && fl !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Does `pattern` grant every topic that `filter` (which may hold wildcards) can match? */
export function filterCovers(pattern: string, filter: string): boolean {
  if (filter.startsWith('$') !== pattern.startsWith('$')) return false;
  const p = pattern.split('/');
  const f = filter.split('/');
  for (let i = 0; i < p.length; i++) {
    const pl = p[i] as string;
    if (pl === '#') return true;
    if (i >= f.length) return false;
    const fl = f[i] as string;
    if (fl === '#') return false;
    if (pl === '+') continue;
    if (fl === '+' || fl !== pl) return false;
  }
  return p.length === f.length;
}

/** Expands `{prefix}` and `{username}` in a pattern. */
export function expandPattern(pattern: string, vars: { prefix: string; username: string | null }): string | null {
  if (pattern.includes('{username}') && vars.username === null) return null;
  return pattern.replaceAll('{prefix}', vars.prefix).replaceAll('{username}', vars.username ?? '');
}

/** A `$broker("…")` route topic template as a filter: a level holding a `{field}` placeholder becomes `+`. */
export function templateFilter(template: string): string {
  return template
    .split('/')
    .map((l) => (/\{[^}]*\}/.test(l) ? '+' : l))
    .join('/');
}

/**
 * What one client may do. Invariants: built once per connection from expanded patterns; a publish
 * is allowed only by a publish pattern matching the topic, a subscription only by a subscribe
 * pattern covering the whole filter.
 */
export class ClientAcl {
  private readonly pub: readonly string[];
  private readonly sub: readonly string[];

  constructor(
    readonly username: string | null,
    publish: readonly string[],
    subscribe: readonly string[],
    prefix: string,
  ) {
    const expand = (list: readonly string[]) => list.map((p) => expandPattern(p, { prefix, username })).filter((p): p is string => p !== null);
    this.pub = expand(publish);
    this.sub = expand(subscribe);
  }

  mayPublish(topic: string): boolean {
    return this.pub.some((p) => topicMatches(p, topic));
  }

  maySubscribe(filter: string): boolean {
    return this.sub.some((p) => filterCovers(p, filter));
  }

  /** May the client read this exact topic (used for reply topics)? */
  mayRead(topic: string): boolean {
    return this.sub.some((p) => topicMatches(p, topic));
  }
}
