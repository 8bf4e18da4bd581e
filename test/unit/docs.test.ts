import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/load.js';
import { renderConfigDoc } from '../../src/docs/config-doc.js';
import { renderErrorsDoc } from '../../src/docs/errors-doc.js';
import { ERROR_CATALOG } from '../../src/errors/catalog.js';

const root = path.resolve(__dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sources(p);
    return /\.ts$/.test(name) ? [p] : [];
  });
}

describe('generated documentation', () => {
  it('docs/config.md is generated from the current schema (run `npm run docs`)', () => {
    expect(readFileSync(path.join(root, 'docs/config.md'), 'utf8')).toBe(renderConfigDoc(configJsonSchema() as Record<string, unknown>));
  });

  it('docs/errors.md lists every error code (run `npm run docs`)', () => {
    expect(readFileSync(path.join(root, 'docs/errors.md'), 'utf8')).toBe(renderErrorsDoc());
  });
});

describe('error catalog', () => {
  const dirs = ['src', 'hal', 'services', 'ota', 'provisioning', 'image', 'scripts'].map((d) => path.join(root, d)).filter((d) => {
    try {
      return statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
  const files = dirs.flatMap(sources).filter((f) => !/src\/errors\/codes-[a-z-]+\.ts$/.test(f));
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');

  it('has only well-formed codes', () => {
    for (const code of Object.keys(ERROR_CATALOG)) expect(code).toMatch(/^OUTPOST_E_[A-Z0-9]+_[A-Z0-9_]+$/);
  });

  it('every code is raised or mapped somewhere (no dead codes)', () => {
    const unused = Object.keys(ERROR_CATALOG).filter((c) => !text.includes(`'${c}'`));
    expect(unused).toEqual([]);
  });

  it('every code used in the sources is in the catalog', () => {
    const used = new Set([...text.matchAll(/'(OUTPOST_E_[A-Z0-9_]+)'/g)].map((m) => m[1] as string));
    const missing = [...used].filter((c) => !(c in ERROR_CATALOG));
    expect(missing).toEqual([]);
  });
});
