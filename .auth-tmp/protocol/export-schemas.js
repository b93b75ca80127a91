/** Writes protocol/schemas/<Name>.json from the TypeBox schemas (run by `make schemas`; a test checks they are current). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PUBLISHED_SCHEMAS } from './schemas.js';
export function renderSchemas() {
    const out = {};
    for (const [name, schema] of Object.entries(PUBLISHED_SCHEMAS)) {
        out[`${name}.json`] = JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', title: name, ...schema }, null, 2) + '\n';
    }
    return out;
}
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
    // dist/protocol/export-schemas.js -> <repo>/protocol/schemas
    const dir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'protocol', 'schemas');
    mkdirSync(dir, { recursive: true });
    for (const [file, text] of Object.entries(renderSchemas()))
        writeFileSync(join(dir, file), text);
    console.log(`wrote ${Object.keys(PUBLISHED_SCHEMAS).length} schemas to ${dir}`);
}
