import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isScalar, LineCounter, parseAllDocuments } from 'yaml';
import { generateManifestTree } from '../../bench/generate.js';
import { parseFastYaml } from '../../src/manifests/fast-yaml.js';
import { indexPositions } from '../../src/manifests/load.js';

/** Asserts the fast reader gives exactly what `yaml` gives: values, and every node's offset, line, type and key. */
function sameAsYaml(text: string, label: string): void {
  const fast = parseFastYaml(text);
  assert.ok(fast, `${label}: the fast reader refused it`);
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const nonEmpty = (Array.isArray(docs) ? docs : []).filter((d) => d.contents !== null && !(isScalar(d.contents) && d.contents.value === null));
  assert.equal(fast.length, nonEmpty.length, `${label}: document count`);
  const fastLines = new LineCounter();
  fastLines.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) fastLines.addNewLine(i + 1);
  nonEmpty.forEach((doc, n) => {
    assert.equal(doc.errors.length, 0, `${label}#${n}: yaml reports errors`);
    const f = fast[n]!;
    assert.deepEqual(f.value, doc.toJS(), `${label}#${n}: value`);
    const want = indexPositions(doc.contents!);
    assert.deepEqual(f.keys, want.keys, `${label}#${n}: keys`);
    assert.deepEqual(Array.from(f.nodes), Array.from(want.nodes), `${label}#${n}: offsets, sizes and types`);
    for (let i = 0; i < f.nodes.length; i += 3) {
      assert.equal(fastLines.linePos(f.nodes[i]!).line, lineCounter.linePos(f.nodes[i]!).line, `${label}#${n}: line of node ${i / 3}`);
    }
  });
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFiles(p)));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('fast YAML reader', () => {
  it('reads the shapes manifests are written in exactly as yaml does', () => {
    sameAsYaml(
      `# leading comment
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web, "quoted key": 'it''s'}}
spec:
  replicas: 3
  paused: false
  ratio: 0.5
  big: 1e3
  hex: 0x1F
  oct: 0o17
  signed: -4
  nothing: ~
  empty:
  selector:
    matchLabels:
      app: web   # trailing comment
  template:
    spec:
      containers:
      - name: web
        image: registry.example/web:v1
        command: ["/bin/sh", "-c", "sleep 40 && echo \\"done\\""]
        values: [-c, -1, +2, .5, 1., 0o17, 0x1F, 1e3, ~, Null, TRUE, yes, 080, a b ,'']
        workingDir: -]
        ports: [{containerPort: 8080, name: http}, {containerPort: 9090}]
        env:
          - name: A
            value: "1"
          - {name: B, value: 'x'}
        args: []
        resources: {}
      - name: side
        lifecycle: {preStop: {exec: {command: [sleep, '5']}}}
      volumes:
        - name: v
          emptyDir: {}
---
---
  apiVersion: v1
  kind: Service
  metadata:
    name: web
    annotations:
      alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=30,stickiness.enabled=false
      alb.ingress.kubernetes.io/healthcheck-path: /healthz?x=1#frag
  spec:
    ports:
    - port: 80
      targetPort: http
    - port: 443
`,
      'shapes',
    );
  });

  it('reads the examples exactly as yaml does (where it reads them)', async () => {
    let read = 0;
    for (const f of await yamlFiles(join(import.meta.dirname, '..', '..', 'examples'))) {
      const text = await readFile(f, 'utf8');
      if (parseFastYaml(text) === undefined) continue;
      sameAsYaml(text, f);
      read++;
    }
    assert.ok(read > 0, 'no example was read by the fast reader');
  });

  it('reads the benchmark set exactly as yaml does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-fast-yaml-'));
    try {
      await generateManifestTree(dir, 50);
      for (const f of await yamlFiles(dir)) sameAsYaml(await readFile(f, 'utf8'), f);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves everything outside its subset (and every error) to yaml', () => {
    const refused = [
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: |\n  text\n',
      'a: >\n  text\n',
      'a: one\n  two\n',
      'a: "one\n  two"\n',
      'a: [1,\n  2]\n',
      '%YAML 1.1\n---\na: yes\n',
      'a:\tb\n',
      'a: b\r\n',
      'a: 1\na: 2\n',
      '80: http\n',
      'true: x\n',
      '? complex\n: key\n',
      '- a\n- b\n',
      '{a: 1}\n',
      'a: b: c\n',
      'a: {b: 1,}\n',
      'a: [x, ]\n',
      'a: [-]\n',
      'a: {b: -}\n',
      'a: [k: v]\n',
      'a: "\\u00e9"\n',
      'a: .inf\n',
      'a:\n-\n',
      'a: {{ .Values.x }}\n',
      'a: b\n...\n',
      'kind: x\n  deeper: y\n',
      '<<: {a: 1}\n',
      '__proto__: x\n',
      'a: "x"#c\n',
    ];
    for (const text of refused) assert.equal(parseFastYaml(text), undefined, JSON.stringify(text));
  });
});
