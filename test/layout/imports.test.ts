import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

/**
 * The folder-level dependency rules of docs/CONTRIBUTING.md, read from the import statements of src/: no cycle
 * between folders, the pure layer imports nothing that does I/O, and product code never imports the lab.
 */

const src = resolve(import.meta.dirname, '..', '..', 'src');
/** No I/O: built from manifests and options alone. */
const PURE = new Set(['manifests', 'plan', 'lint', 'tune', 'preflight']);
/** Top-level files the pure layer may use (typed options, error classes). */
const PURE_FILES = new Set(['options', 'errors', 'version']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** "plan" for src/plan/checks/x.ts, "options" for src/options.ts. */
function folderOf(file: string): string {
  const rel = relative(src, file).split('/');
  return rel.length === 1 ? (rel[0] as string).replace(/\.ts$/, '') : (rel[0] as string);
}

function graph(): Map<string, Map<string, string>> {
  const edges = new Map<string, Map<string, string>>();
  for (const f of files(src)) {
    const from = folderOf(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gm)) {
      const target = resolve(dirname(f), (m[1] as string).replace(/\.js$/, '.ts'));
      const to = folderOf(target);
      if (to === from) continue;
      const out = edges.get(from) ?? new Map<string, string>();
      if (!out.has(to)) out.set(to, relative(src, f));
      edges.set(from, out);
    }
  }
  return edges;
}

function findCycle(edges: Map<string, Map<string, string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n)?.keys() ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of edges.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

describe('folder dependencies', () => {
  const edges = graph();

  it('has no import cycle between folders of src/', () => {
    const cycle = findCycle(edges);
    const why = cycle?.slice(1).map((to, i) => `${cycle[i] as string} → ${to} (${edges.get(cycle[i] as string)?.get(to) ?? ''})`);
    assert.equal(cycle, undefined, `folder cycle: ${why?.join(', ')}`);
  });

  it('keeps the pure layer (manifests, plan, lint, tune) free of imports from the I/O folders', () => {
    const bad: string[] = [];
    for (const from of PURE) {
      for (const [to, file] of edges.get(from) ?? []) if (!PURE.has(to) && !PURE_FILES.has(to)) bad.push(`${file} imports ${to}/`);
    }
    assert.deepEqual(bad, []);
  });

  it('never imports lab/ from product code (only the lab CLI verb does)', () => {
    const bad = [...edges].flatMap(([from, out]) => (from !== 'lab' && out.has('lab') ? [`${out.get('lab') as string} imports lab/`] : []));
    assert.deepEqual(bad.filter((b) => !b.startsWith('cli/')), []);
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    const g = new Map([
      ['a', new Map([['b', 'a/x.ts']])],
      ['b', new Map([['a', 'b/y.ts']])],
    ]);
    assert.deepEqual(findCycle(g), ['a', 'b', 'a']);
  });
});
