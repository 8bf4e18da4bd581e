import { MAX_ALIAS_COUNT, MAX_DEPTH } from '../config/source-parse.js';
import { DROP_IN_NAME, MAX_CONFIG_FILE_BYTES, MAX_CONFIG_TOTAL_BYTES, MAX_DROP_INS } from '../config/source-read.js';

/** Generates docs/config.md from the configuration schema (one source of truth). */

type Schema = Record<string, unknown>;

function literals(s: Schema): unknown[] | null {
  const any = s['anyOf'];
  if (!Array.isArray(any)) return null;
  const values = any.map((b) => (b as Schema)['const']);
  return values.every((v) => v !== undefined) ? values : null;
}

function typeOf(s: Schema): string {
  if (s['const'] !== undefined) return `\`${JSON.stringify(s['const'])}\``;
  const lits = literals(s);
  if (lits) return lits.map((l) => `\`${String(l)}\``).join(', ');
  if (Array.isArray(s['oneOf'])) return 'one of the forms below';
  if (Array.isArray(s['anyOf'])) return (s['anyOf'] as Schema[]).map(typeOf).join(' or ');
  if (s['type'] === 'array') return `list of ${typeOf(s['items'] as Schema)}`;
  if (s['type'] === 'object') return 'object';
  const t = String(s['type'] ?? 'any');
  const bounds: string[] = [];
  if (s['minimum'] !== undefined) bounds.push(`≥ ${String(s['minimum'])}`);
  if (s['exclusiveMinimum'] !== undefined) bounds.push(`> ${String(s['exclusiveMinimum'])}`);
  if (s['maximum'] !== undefined) bounds.push(`≤ ${String(s['maximum'])}`);
  return bounds.length ? `${t} (${bounds.join(', ')})` : t;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

interface Section {
  readonly title: string;
  readonly schema: Schema;
}

function objectTable(s: Schema, lines: string[], queue: Section[], title: string): void {
  const props = (s['properties'] ?? {}) as Record<string, Schema>;
  const required = new Set((s['required'] ?? []) as string[]);
  lines.push('| key | type | default | description |', '|---|---|---|---|');
  for (const [k, v] of Object.entries(props)) {
    const def = v['default'] !== undefined ? `\`${JSON.stringify(v['default'])}\`` : required.has(k) ? '**required**' : '';
    lines.push(`| \`${k}\` | ${cell(typeOf(v))} | ${cell(def)} | ${cell(String(v['description'] ?? ''))} |`);
    const inner = v['type'] === 'array' ? (v['items'] as Schema) : v;
    if (inner['type'] === 'object' && inner['properties'] && Object.keys(inner['properties'] as object).length > 0) queue.push({ title: `${title}.${k}${v['type'] === 'array' ? '[]' : ''}`, schema: inner });
    else if (Array.isArray(inner['oneOf'])) queue.push({ title: `${title}.${k}${v['type'] === 'array' ? '[]' : ''}`, schema: inner });
  }
}

/** Renders the whole schema as Markdown: one table per object, one subsection per tagged-union branch. */
export function renderConfigDoc(schema: Schema): string {
  const lines: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'One YAML (or JSON) file, plus drop-ins from `config.d/` next to it, merged in name order: mappings merge key by key,',
    'a `null` removes a key, and lists of objects with an `id` (devices, points, rules, routes) merge element by element by id.',
    'The merged document is validated once against this schema, then frozen. `outpost config validate <file>` checks a file;',
    '`outpost config schema` prints the JSON Schema. Examples: `config/demo.yaml` and `config/examples/`.',
    '',
    '## Files',
    '',
    `- Drop-ins: names in \`config.d/\` matching \`${DROP_IN_NAME.source}\` — \`*.yaml\`, \`*.yml\`, \`*.json\` not starting with a dot.`,
    '  Editor files (`.#x.yaml`, `.x.yaml.swp`, `x.yaml~`, `#x.yaml#`) and hidden files are ignored; only regular files are read',
    '  (a named pipe, device or directory named like a drop-in is refused with `OUTPOST_E_CONFIG_READ`).',
    `- Limits: ${MAX_CONFIG_FILE_BYTES / 1024 / 1024} MiB per file, ${MAX_CONFIG_TOTAL_BYTES / 1024 / 1024} MiB for all files together, ${MAX_DROP_INS} drop-ins`,
    '  (`OUTPOST_E_CONFIG_TOO_LARGE`, refused before parsing); nesting deeper than ' + String(MAX_DEPTH) + ' levels and aliases expanding to more than',
    `  ${MAX_ALIAS_COUNT} values are refused (\`OUTPOST_E_CONFIG_PARSE\`).`,
    '- Content: UTF-8 without control characters (`OUTPOST_E_CONFIG_ENCODING`, with the byte offset); one YAML document whose',
    '  top level is a mapping; no duplicate keys; a file that is empty or holds only comments is refused (`OUTPOST_E_CONFIG_EMPTY`).',
    '  Numbers must be finite: `.nan`, `.inf` and overflowing literals such as `1e400` are refused wherever a number is expected.',
    '- Problems are reported in one pass, one line each: `file:line:col: path: problem`. Problems of the files themselves',
    '  (unreadable, too large, not UTF-8, not YAML, empty) are reported for every file; the merged document (schema, route',
    '  grammar, cross-references, `gateway.dataDir`) is checked once every file could be read.',
    '- `api.host` and `broker.host` must be an IP address or a host name; `gateway.dataDir` must not lie on /proc, /sys or /dev',
    '  nor run through a file (`OUTPOST_E_CONFIG_DATA_DIR`); `outpost run` creates it and checks it is writable before starting.',
    '',
  ];
  const queue: Section[] = [];
  const top = (schema['properties'] ?? {}) as Record<string, Schema>;
  lines.push('## Top level', '');
  objectTable(schema, lines, [], '');
  for (const [k, v] of Object.entries(top)) {
    const inner = v['type'] === 'array' ? (v['items'] as Schema) : v;
    queue.push({ title: `${k}${v['type'] === 'array' ? '[]' : ''}`, schema: inner });
  }
  const done = new Set<string>();
  while (queue.length > 0) {
    const { title, schema: s } = queue.shift() as Section;
    if (done.has(title)) continue;
    done.add(title);
    if (Array.isArray(s['oneOf'])) {
      const tag = String((s['discriminator'] as Schema | undefined)?.['propertyName'] ?? 'type');
      lines.push('', `## \`${title}\``, '', cell(String(s['description'] ?? '')), '', `Selected by \`${tag}\`:`);
      for (const b of s['oneOf'] as Schema[]) {
        const tagValue = String(((b['properties'] as Record<string, Schema>)[tag] ?? {})['const']);
        const sub: Section[] = [];
        lines.push('', `### \`${title}\` with \`${tag}: ${tagValue}\``, '');
        if (b['description']) lines.push(String(b['description']), '');
        objectTable(b, lines, sub, `${title}(${tagValue})`);
        queue.push(...sub);
      }
      continue;
    }
    if (s['type'] !== 'object' || !s['properties']) continue;
    const sub: Section[] = [];
    lines.push('', `## \`${title}\``, '');
    if (s['description']) lines.push(String(s['description']), '');
    objectTable(s, lines, sub, title);
    queue.push(...sub);
  }
  return `${lines.join('\n')}\n`;
}
