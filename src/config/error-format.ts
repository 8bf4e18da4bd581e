import type { ErrorObject } from 'ajv';
import { ID_PATTERN } from '../../hal/schema-common.js';

/** One configuration problem: the path in the merged document and what is wrong there. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** `/devices/2/points/5/address` → `devices[2].points[5].address`. */
export function pathOf(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(root)' : out;
}

const COMPARISONS: Record<string, string> = { '<=': '≤', '>=': '≥', '<': '<', '>': '>' };

function constsOf(schema: unknown): unknown[] | null {
  const branches = (schema as { anyOf?: unknown[] }).anyOf;
  if (!Array.isArray(branches)) return null;
  const values = branches.map((b) => (b as { const?: unknown }).const);
  return values.every((v) => v !== undefined) ? values : null;
}

function describe(e: ErrorObject): { path: string; message: string } {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: pathOf(e.instancePath), message: `unknown key '${String(p['additionalProperty'])}'` };
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
      const forms = ((e.parentSchema as { anyOf: Array<{ properties?: Record<string, unknown> }> }).anyOf ?? [])
        .map((b) => (b.properties ? `{${Object.keys(b.properties).join(', ')}}` : 'a value'))
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
