import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InputError } from '../../src/errors.js';
import { globToRegExp, loadManifests, MAX_FILE_BYTES } from '../../src/manifests/load.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'alb-load-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const p = join(dir, name);
  await mkdir(join(p, '..'), { recursive: true });
  await writeFile(p, text);
  return p;
}

async function problems(paths: string[], extra: { readStdin?: () => Promise<string> } = {}): Promise<string> {
  try {
    await loadManifests({ paths, defaultNamespace: 'default', baseDir: dir, ...extra });
  } catch (err) {
    assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  assert.fail('expected the load to fail');
}

describe('loadManifests', () => {
  it('reads multi-document YAML with source lines and defaults the namespace', async () => {
    await file('ok/app.yaml', `# comment\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  namespace: ignored\n`);
    const set = await loadManifests({ paths: ['ok'], defaultNamespace: 'shop', baseDir: dir });
    assert.equal(set.objects.length, 2);
    const [svc, ns] = set.objects;
    assert.deepEqual(svc?.ref, { apiVersion: 'v1', kind: 'Service', namespace: 'shop', name: 'web' });
    assert.deepEqual(svc?.source, { file: 'ok/app.yaml', line: 2 });
    assert.equal(svc?.locate(['spec', 'ports', 0, 'port']).line, 8);
    assert.equal(svc?.locate(['spec', 'nothing', 'here']).line, 6, 'falls back to the nearest existing ancestor');
    assert.equal(ns?.ref.namespace, '', 'cluster-scoped objects have no namespace');
    assert.equal(ns?.source.line, 12);
  });

  it('reads JSON, kind: List, folders recursively, globs and stdin', async () => {
    await file('mixed/a.json', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }, null, 2));
    await file('mixed/sub/list.yaml', `apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: b}\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: c}\n`);
    await file('mixed/sub/notes.txt', 'not a manifest');
    const folder = await loadManifests({ paths: ['mixed'], defaultNamespace: 'default', baseDir: dir });
    assert.deepEqual(folder.objects.map((o) => o.ref.name), ['a', 'b', 'c']);
    assert.equal(folder.objects[2]?.source.line, 7, 'list items keep their own line');
    const glob = await loadManifests({ paths: ['mixed/**/*.yaml'], defaultNamespace: 'default', baseDir: dir });
    assert.deepEqual(glob.objects.map((o) => o.ref.name), ['b', 'c']);
    const stdin = await loadManifests({
      paths: ['-'],
      defaultNamespace: 'default',
      baseDir: dir,
      readStdin: async () => 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n',
    });
    assert.equal(stdin.objects[0]?.source.file, '<stdin>');
  });

  it('reports unparsable YAML with file:line and a fix', async () => {
    await file('bad/syntax.yaml', `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: indent\n`);
    const msg = await problems(['bad/syntax.yaml']);
    assert.match(msg, /bad\/syntax\.yaml:[45]:\d+/);
    assert.match(msg, /YAML syntax error/);
    assert.match(msg, /fix:/);
  });

  it('rejects documents that are not objects and objects missing apiVersion, kind or name', async () => {
    await file('bad/scalar.yaml', `just a string\n`);
    assert.match(await problems(['bad/scalar.yaml']), /scalar\.yaml:1: a document here is a string/);
    await file('bad/missing.yaml', `kind: Deployment\nmetadata:\n  labels: {a: b}\n`);
    const msg = await problems(['bad/missing.yaml']);
    assert.match(msg, /missing\.yaml:1: object is missing apiVersion, metadata\.name/);
  });

  it('names the apiVersion to use for removed APIs', async () => {
    await file('bad/old-ingress.yaml', `apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n`);
    const msg = await problems(['bad/old-ingress.yaml']);
    assert.match(msg, /old-ingress\.yaml:1: Ingress web uses apiVersion extensions\/v1beta1, which was removed in Kubernetes 1\.22/);
    assert.match(msg, /use apiVersion: networking\.k8s\.io\/v1/);
  });

  it('rejects duplicates, template markers, alias bombs and oversized files', async () => {
    await file('bad/dup.yaml', `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n`);
    assert.match(await problems(['bad/dup.yaml']), /dup\.yaml:5: ConfigMap default\/d is defined twice \(first at bad\/dup\.yaml:1\)/);

    await file('bad/helm.yaml', `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n`);
    const helm = await problems(['bad/helm.yaml']);
    assert.match(helm, /helm\.yaml:4:\d+: unresolved template marker/);
    assert.match(helm, /helm template/);

    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    await file('bad/bomb.yaml', `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n${bomb.map((l) => `  ${l}`).join('\n')}\n`);
    assert.match(await problems(['bad/bomb.yaml']), /aliases/);

    await file('bad/huge.yaml', 'x'.repeat(MAX_FILE_BYTES + 10));
    assert.match(await problems(['bad/huge.yaml']), /over the 4 MiB limit/);
  });

  it('accepts Argo Rollouts argument markers', async () => {
    await file('argo/at.yaml', `apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  args: [{name: x}]\n  metrics:\n    - name: m\n      provider:\n        job:\n          spec:\n            template:\n              spec:\n                containers: [{name: c, image: i, args: ["--x", "{{args.x}}"]}]\n`);
    const set = await loadManifests({ paths: ['argo'], defaultNamespace: 'default', baseDir: dir });
    assert.equal(set.objects.length, 1);
  });

  it('reports missing paths and empty inputs', async () => {
    assert.match(await problems(['nope.yaml']), /nope\.yaml does not exist/);
    assert.match(await problems(['nothing/**/*.yaml']), /matches no/);
  });

  it('collects problems from every file before failing', async () => {
    const msg = await problems(['bad/scalar.yaml', 'bad/old-ingress.yaml']);
    assert.match(msg, /scalar\.yaml/);
    assert.match(msg, /old-ingress\.yaml/);
  });
});

describe('globToRegExp', () => {
  it('matches ** across folders and * within one', () => {
    assert.ok(globToRegExp('**/*.yaml').test('a/b/c.yaml'));
    assert.ok(globToRegExp('**/*.yaml').test('c.yaml'));
    assert.ok(!globToRegExp('*.yaml').test('a/c.yaml'));
    assert.ok(globToRegExp('k8s/*.{yaml,yml}').test('k8s/x.yml'));
  });
});
