import { ERROR_CATALOG } from '../errors/catalog.js';

/** Generates docs/errors.md from the error catalog. */
export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/errors/codes-*.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Every error Outpost reports carries one of these stable codes (`OUTPOST_E_<AREA>_<WHAT>`), in log lines (`err.code`),',
    'API replies (`{"error": {"code", "message"}}`), broker command replies and CLI messages (`outpost: <code>: <message>`).',
    'Codes marked *input* report bad input (configuration, arguments, files, payloads): the CLI exits with 2 for them, 1 otherwise.',
    '',
  ];
  const byArea = new Map<string, Array<[string, { summary: string; input: boolean }]>>();
  for (const [code, spec] of Object.entries(ERROR_CATALOG)) {
    const list = byArea.get(spec.area) ?? [];
    list.push([code, spec]);
    byArea.set(spec.area, list);
  }
  for (const [area, list] of [...byArea.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`## ${area}`, '', '| code | kind | meaning |', '|---|---|---|');
    for (const [code, spec] of list.sort(([a], [b]) => a.localeCompare(b))) lines.push(`| \`${code}\` | ${spec.input ? 'input' : 'runtime'} | ${spec.summary.replace(/\|/g, '\\|')} |`);
    lines.push('');
  }
  return lines.join('\n');
}
