/** Merging of the main configuration with its drop-ins (config.d/*.yaml, in name order). */

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIdList(v: Json): v is Array<Record<string, Json> & { id: string }> {
  return Array.isArray(v) && v.every((x) => isObject(x) && typeof x['id'] === 'string');
}

/**
 * Merges `patch` into `base` and returns a new value (inputs are not modified):
 * objects merge key by key; a `null` value removes the key; lists of objects with an `id`
 * (devices, points, rules, routes…) merge element by element by id, new ids appended in order;
 * any other value replaces the base.
 */
export function mergeConfig(base: Json, patch: Json): Json {
  if (isObject(base) && isObject(patch)) {
    const out: Record<string, Json> = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      // Own keys only, defined rather than assigned: a key named `__proto__` stays a key (and is then refused as unknown).
      else Object.defineProperty(out, k, { value: Object.hasOwn(base, k) ? mergeConfig(base[k], v) : v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (isIdList(base) && isIdList(patch)) {
    const out = base.map((x) => ({ ...x }));
    for (const item of patch) {
      const i = out.findIndex((x) => x.id === item.id);
      if (i >= 0) out[i] = mergeConfig(out[i], item) as (typeof out)[number];
      else out.push(item);
    }
    return out;
  }
  return patch;
}

/** Recursively freezes a value so the validated configuration cannot change after start. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
