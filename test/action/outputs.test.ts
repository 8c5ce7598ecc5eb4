import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { RESULTS } from '../../src/action/outputs.js';
import { root } from './run-action.js';

/** The README's table that follows `heading`, first column (`name`) of each row. */
function readmeTable(readme: string, heading: string, header: string): string[] {
  const at = readme.indexOf(heading);
  assert.ok(at >= 0, `README has no "${heading}"`);
  const tableAt = readme.indexOf(header, at);
  assert.ok(tableAt >= 0, `README's "${heading}" has no table starting "${header}"`);
  const rows: string[] = [];
  for (const line of readme.slice(tableAt).split('\n').slice(2)) {
    const m = /^\| `([\w-]+)` \|/.exec(line);
    if (!m) break;
    rows.push(m[1] as string);
  }
  return rows;
}

async function actionSources(): Promise<string> {
  const dir = join(root, 'src', 'action');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'));
  return (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('\n');
}

describe('truthful outputs', () => {
  it('action.yml, the README and the setOutput calls name the same outputs', async () => {
    const meta = parse(await readFile(join(root, 'action.yml'), 'utf8')) as { outputs: Record<string, { description: string }> };
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const declared = Object.keys(meta.outputs).sort();
    const documented = readmeTable(readme, '### Outputs', '| Output |').sort();
    const set = [...new Set([...(await actionSources()).matchAll(/core\.setOutput\('([^']+)'/g)].map((m) => m[1] as string))].sort();
    assert.deepEqual(documented, declared, 'README ### Outputs vs action.yml outputs');
    assert.deepEqual(set, declared, 'core.setOutput calls in src/action vs action.yml outputs');
  });

  it('documents every result value, and sets no other', async () => {
    const meta = parse(await readFile(join(root, 'action.yml'), 'utf8')) as { outputs: Record<string, { description: string }> };
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const values = Object.keys(RESULTS).sort();
    assert.deepEqual(readmeTable(readme, '### Outputs', '| `result` | Meaning |').sort(), values, 'README result table vs RESULTS');
    const description = meta.outputs.result?.description ?? '';
    for (const v of values) assert.match(description, new RegExp(`(^|[\\s(,])${v}([\\s,.)]|$)`), `action.yml's result output does not name ${v}`);
    const literals = [...(await actionSources()).matchAll(/core\.setOutput\('result', (?:[^)]*?)'([\w-]+)'/g)].map((m) => m[1] as string);
    for (const l of literals) assert.ok(values.includes(l), `src/action sets result ${l}, which is not in RESULTS`);
    assert.ok(literals.includes('failed'));
  });
});
