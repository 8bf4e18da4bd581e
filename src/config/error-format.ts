import type { ErrorObject } from 'ajv';
import { ID_PATTERN } from '../../hal/schema-common.js';
import type { ErrorCode } from '../errors/catalog.js';

/**
 * One configuration problem: where (the file and line it came from, the path in the merged
 * document; `path` is '' for a problem of a whole file) and what is wrong there.
 */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
  /** The main file or the drop-in the offending value came from. */
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  /** Set when the problem is not OUTPOST_E_CONFIG_INVALID (a file too large, not UTF-8, not YAML, empty…). */
  readonly code?: ErrorCode;
  /** The words of the library or system call underneath (the YAML parser, an errno). */
  readonly reason?: string;
  /** Path segments in the merged document, when `path` alone cannot be split back (keys with dots). */
  readonly at?: readonly string[];
}

/** `devices[2].points[5].address` → ['devices', '2', 'points', '5', 'address']. */
export function segmentsOf(path: string): string[] {
  if (path === '' || path === '(root)') return [];
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[1] ?? m[2]) as string);
}

/** ['devices', '2', 'address'] → `devices[2].address`. */
export function pathOfSegments(segments: readonly string[]): string {
  let out = '';
  for (const p of segments) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(root)' : out;
}

/** `/devices/2/points/5/address` → `devices[2].points[5].address`. */
export function pathOf(instancePath: string, extra?: string): string {
  return pathOfSegments(pointerSegments(instancePath, extra));
}

function pointerSegments(instancePath: string, extra?: string): string[] {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts;
}

const COMPARISONS: Record<string, string> = { '<=': '≤', '>=': '≥', '<': '<', '>': '>' };

function constsOf(schema: unknown): unknown[] | null {
  const branches = (schema as { anyOf?: unknown[] }).anyOf;
  if (!Array.isArray(branches)) return null;
  const values = branches.map((b) => (b as { const?: unknown }).const);
  return values.every((v) => v !== undefined) ? values : null;
}

const NON_FINITE = 'must be a finite number';

/** A problem reporting NaN or an infinity (the loader reports those from the parser, with their line). */
export function isNonFiniteProblem(p: ConfigProblem): boolean {
  return p.message.startsWith(NON_FINITE);
}

/** The path (below `data`) of the first number that is not finite, looking a few levels deep. */
function nonFiniteIn(data: unknown, depth = 0): string[] | null {
  if (typeof data === 'number') return Number.isFinite(data) ? null : [];
  if (depth > 3 || typeof data !== 'object' || data === null) return null;
  for (const [k, v] of Object.entries(data)) {
    const below = nonFiniteIn(v, depth + 1);
    if (below) return [k, ...below];
  }
  return null;
}

function describe(e: ErrorObject): ConfigProblem {
  const p = e.params as Record<string, unknown>;
  // NaN or an infinity, also under a union of forms whose branch errors are folded (deadband…).
  const nonFinite = e.keyword === 'type' || e.keyword === 'anyOf' || e.keyword === 'oneOf' ? nonFiniteIn(e.data) : null;
  if (nonFinite) {
    const segs = [...pointerSegments(e.instancePath), ...nonFinite];
    let value: unknown = e.data;
    for (const k of nonFinite) value = (value as Record<string, unknown>)[k];
    return { path: pathOfSegments(segs), message: `${NON_FINITE}, got ${String(value)}` };
  }
  switch (e.keyword) {
    case 'additionalProperties':
      // The key's own segment locates the file and line that brought it in.
      return { path: pathOf(e.instancePath), message: `unknown key '${String(p['additionalProperty'])}'`, at: pointerSegments(e.instancePath, String(p['additionalProperty'])) };
    case 'required':
      return { path: pathOf(e.instancePath), message: `missing required key '${String(p['missingProperty'])}'` };
    case 'maximum':
    case 'minimum':
    case 'exclusiveMaximum':
    case 'exclusiveMinimum':
      return { path: pathOf(e.instancePath), message: `must be ${COMPARISONS[String(p['comparison'])] ?? p['comparison']} ${String(p['limit'])}` };
    case 'type':
      return { path: pathOf(e.instancePath), message: `must be ${String(p['type']).replace(',', ' or ')}, got ${typeName(e.data)}` };
    case 'pattern':
      if (p['pattern'] === ID_PATTERN) {
        return { path: pathOf(e.instancePath), message: `${JSON.stringify(e.data)} is not a valid id: use letters, digits and _ . : - (at most 64, starting with a letter or digit)` };
      }
      return { path: pathOf(e.instancePath), message: `${JSON.stringify(e.data)} does not match ${String(p['pattern'])}` };
    case 'discriminator': {
      const allowed = ((e.parentSchema as { oneOf?: Array<{ properties: Record<string, { const: unknown }> }> }).oneOf ?? []).map(
        (b) => b.properties[String(p['tag'])]?.const,
      );
      const tag = String(p['tag']);
      return p['error'] === 'tag'
        ? { path: pathOf(e.instancePath, tag), message: `missing or not a string; must be one of: ${allowed.join(', ')}` }
        : { path: pathOf(e.instancePath, tag), message: `must be one of: ${allowed.join(', ')}; got ${JSON.stringify(p['tagValue'])}` };
    }
    case 'anyOf': {
      const values = constsOf(e.parentSchema);
      if (values) return { path: pathOf(e.instancePath), message: `must be one of: ${values.join(', ')}; got ${JSON.stringify(e.data)}` };
      const forms = ((e.parentSchema as { anyOf: Array<{ properties?: Record<string, unknown>; type?: unknown }> }).anyOf ?? [])
        .map((b) => (b.properties ? `{${Object.keys(b.properties).join(', ')}}` : typeof b.type === 'string' ? `a ${b.type}` : 'a value'))
        .join(' or ');
      return { path: pathOf(e.instancePath), message: `must be one of the forms ${forms}` };
    }
    case 'minItems':
      return { path: pathOf(e.instancePath), message: `must have at least ${String(p['limit'])} item(s)` };
    case 'minLength':
      return { path: pathOf(e.instancePath), message: String(p['limit']) === '1' ? 'must not be empty' : `must be at least ${String(p['limit'])} characters` };
    case 'maxLength':
      return { path: pathOf(e.instancePath), message: `must be at most ${String(p['limit'])} characters` };
    default:
      return { path: pathOf(e.instancePath), message: e.message ?? e.keyword };
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Turns ajv errors into one problem per path. Errors of branches under an anyOf of constants are
 * folded into a single "must be one of" problem.
 */
export function formatAjvErrors(errors: readonly ErrorObject[]): ConfigProblem[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath));
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const e of errors) {
    // Skip errors inside an anyOf branch when the anyOf itself is reported.
    const parentAnyOf = [...anyOfPaths].some((s) => e.keyword !== 'anyOf' && e.schemaPath.startsWith(`${s}/`));
    if (parentAnyOf) continue;
    const d = describe(e);
    const key = `${d.path}: ${d.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}
