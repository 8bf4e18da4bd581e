/** Merging of the main configuration with its drop-ins (config.d/*.yaml, in name order). */

type Json = unknown;

/**
 * Where a value of the merged document came from: the file (main file or drop-in) and the line and
 * column of its key or list item there; `children` by key (lists: by index as a string).
 */
export interface Origin {
  readonly file: string;
  readonly line?: number;
  readonly col?: number;
  readonly children?: ReadonlyMap<string, Origin>;
}

/** A document and, optionally, the origin of each of its values. */
export interface Tracked {
  readonly value: Json;
  readonly origin?: Origin | undefined;
}

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIdList(v: Json): v is Array<Record<string, Json> & { id: string }> {
  return Array.isArray(v) && v.every((x) => isObject(x) && typeof x['id'] === 'string');
}

/** Sets an own, enumerable key: `__proto__` stays a plain key (the schema then reports it as unknown). */
function put(o: Record<string, Json>, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function withChildren(origin: Origin | undefined, children: Map<string, Origin>): Origin | undefined {
  return origin ? { ...origin, children } : undefined;
}

/**
 * Merges `patch` into `base` (inputs are not modified) and carries the origins along: objects merge
 * key by key; a `null` value removes the key; lists of objects with an `id` merge element by element
 * by id, new ids appended in order; any other value replaces the base (and takes the patch's origin).
 * A merged object or list keeps the origin of the file that first declared it.
 */
export function mergeTracked(base: Tracked, patch: Tracked): Tracked {
  const b = base.value;
  const p = patch.value;
  if (isObject(b) && isObject(p)) {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(b)) put(out, k, v);
    const children = new Map(base.origin?.children ?? []);
    for (const [k, v] of Object.entries(p)) {
      const po = patch.origin?.children?.get(k);
      if (v === null) {
        delete out[k];
        children.delete(k);
      } else if (Object.hasOwn(b, k)) {
        const r = mergeTracked({ value: b[k], origin: base.origin?.children?.get(k) }, { value: v, origin: po });
        put(out, k, r.value);
        setOrDelete(children, k, r.origin);
      } else {
        put(out, k, v);
        setOrDelete(children, k, po);
      }
    }
    return { value: out, origin: withChildren(base.origin ?? patch.origin, children) };
  }
  if (isIdList(b) && isIdList(p)) {
    const out = b.map((x) => ({ ...x }));
    const byId = new Map<string, number>();
    out.forEach((x, i) => {
      if (!byId.has(x.id)) byId.set(x.id, i);
    });
    const children = new Map(base.origin?.children ?? []);
    p.forEach((item, j) => {
      const po = patch.origin?.children?.get(String(j));
      const i = byId.get(item.id) ?? -1;
      if (i >= 0) {
        const r = mergeTracked({ value: out[i], origin: children.get(String(i)) }, { value: item, origin: po });
        out[i] = r.value as (typeof out)[number];
        setOrDelete(children, String(i), r.origin);
      } else {
        setOrDelete(children, String(out.length), po);
        byId.set(item.id, out.length);
        out.push(item);
      }
    });
    return { value: out, origin: withChildren(base.origin ?? patch.origin, children) };
  }
  return patch;
}

function setOrDelete(m: Map<string, Origin>, k: string, o: Origin | undefined): void {
  if (o) m.set(k, o);
  else m.delete(k);
}

/** mergeTracked without origins: the merge rules alone. */
export function mergeConfig(base: Json, patch: Json): Json {
  return mergeTracked({ value: base }, { value: patch }).value;
}

/** The origin of the deepest value on `segments` that has one (the file and line to show for a problem there). */
export function originAt(origin: Origin | undefined, segments: readonly string[]): Origin | undefined {
  let best = origin;
  let cur = origin;
  for (const s of segments) {
    cur = cur?.children?.get(s);
    if (!cur) break;
    best = cur;
  }
  return best;
}

/** Recursively freezes a value so the validated configuration cannot change after start. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
