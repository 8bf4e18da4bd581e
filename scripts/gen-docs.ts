import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../src/config/load.js';
import { renderConfigDoc } from '../src/docs/config-doc.js';
import { renderErrorsDoc } from '../src/docs/errors-doc.js';

/** `npm run docs`: regenerates docs/config.md and docs/errors.md (a test fails when they are stale). */
const root = new URL('../../', import.meta.url);
writeFileSync(new URL('docs/config.md', root), renderConfigDoc(configJsonSchema() as Record<string, unknown>));
writeFileSync(new URL('docs/errors.md', root), renderErrorsDoc());
process.stdout.write('docs/config.md and docs/errors.md regenerated\n');
