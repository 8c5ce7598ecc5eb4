import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { AUDIT_LOG } from '../../src/lab/controlplane/processes.js';
import { describeTiers, e2eLab, labArgs, root, variant, type E2eLab } from './helpers.js';

/**
 * Least privilege (issue 10, item 8): a ServiceAccount bound to exactly the Role of examples/rbac deploys a set that
 * holds only namespaced objects. The real tier's API server authorizes (RBAC) and audits the ServiceAccount's
 * requests, so the test sees every call it made. The embedded API server authenticates one bearer token and does not
 * authorize, so there the test would prove nothing: it runs on the real tier only.
 */

interface AuditEvent {
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  stage: string;
  userAgent?: string;
}

describeTiers(
  'least privilege: a namespace-scoped deployer with exactly examples/rbac\'s Role',
  (tier) => {
    let l: E2eLab;
    before(async () => {
      l = await e2eLab({}, tier);
    });
    after(async () => {
      await l.stop();
    });

    it('deploys a set of namespaced objects with the ServiceAccount\'s token; no cluster-scoped write, only three cluster-scoped reads that tolerate a 403', async () => {
      // The admin's part: the namespace (labelled for readiness gates), the ServiceAccount, the Role and its binding.
      const ns = await l.kubectl(['apply', '-f', join(root, 'examples/2048/safe/1-namespace.yaml')]);
      assert.equal(ns.code, 0, ns.stderr);
      assert.equal((await l.kubectl(['create', 'serviceaccount', 'deployer', '-n', 'game-2048'])).code, 0);
      const docs = parseAllDocuments(await readFile(join(root, 'examples/rbac/alb-rollout-deployer.yaml'), 'utf8')).map((d) => d.toJSON() as { kind: string });
      const role = docs.find((d) => d.kind === 'Role');
      assert.ok(role, 'examples/rbac has the Role');
      const binding = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'deployer', namespace: 'game-2048' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'alb-rollout-deployer' }, subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'game-2048' }] };
      const rbacFile = join(l.dir, 'rbac.yaml');
      await writeFile(rbacFile, `${stringify(role)}---\n${stringify(binding)}`);
      const applied = await l.kubectl(['apply', '-f', rbacFile]);
      assert.equal(applied.code, 0, applied.stderr);
      const token = await l.kubectl(['create', 'token', 'deployer', '-n', 'game-2048', '--duration=1h']);
      assert.equal(token.code, 0, token.stderr);
      const kubeconfig = parse(await readFile(l.kubeconfig, 'utf8')) as { users: Array<{ user: Record<string, unknown> }> };
      for (const u of kubeconfig.users) u.user = { token: token.stdout.trim() };
      const deployerConfig = join(l.dir, 'deployer.kubeconfig');
      await writeFile(deployerConfig, stringify(kubeconfig));
      // What the deployer cannot do: a cluster-scoped read.
      const denied = await l.kubectl(['--kubeconfig', deployerConfig, 'get', 'namespaces']);
      assert.notEqual(denied.code, 0, 'the deployer must not list namespaces');

      // The deployer's part: the set without the Namespace (only namespaced objects).
      const v1 = await variant('2048/safe', l.dir, 'v1');
      const set = join(l.dir, 'namespaced');
      await mkdir(set, { recursive: true });
      for (const f of ['2-service.yaml', '3-ingress.yaml', '4-deployment.yaml']) await copyFile(join(v1, f), join(set, f));
      const reportFile = join(l.dir, 'rbac.json');
      // --kubeconfig wins over the lab's own kubeconfig (the lab still gives the AWS endpoints and the clock).
      const r = await l.cli(['deploy', '-f', set, '--report', reportFile, '--kubeconfig', deployerConfig, ...labArgs(l)], { timeoutMs: 180_000 });
      assert.equal(r.code, 0, `deploy as the namespace-scoped deployer failed:\n${r.stdout}\n${r.stderr}`);
      const report = JSON.parse(await readFile(reportFile, 'utf8')) as { result: string };
      assert.equal(report.result, 'succeeded');

      const dir = l.lab.real?.dir as string;
      const events = (await readFile(join(dir, AUDIT_LOG), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AuditEvent)
        .filter((e) => e.stage === 'ResponseComplete' && e.user.username === 'system:serviceaccount:game-2048:deployer' && e.objectRef?.resource !== undefined && !String(e.userAgent).startsWith('kubectl'));
      assert.ok(events.some((e) => e.verb === 'patch' && e.objectRef?.resource === 'deployments'), `the deployer's apply is in the audit log (${events.length} events)`);
      // A Namespace is cluster-scoped although the audit log names it as its own namespace.
      const clusterScoped = events.filter((e) => e.objectRef?.resource === 'namespaces' || !e.objectRef?.namespace);
      const writes = clusterScoped.filter((e) => !['get', 'list', 'watch'].includes(e.verb));
      assert.deepEqual(writes.map((e) => `${e.verb} ${e.requestURI}`), [], 'no cluster-scoped write');
      // The reads deploy tolerates a 403 on, and nothing else: the Namespace (the dry-run says whether it exists; the
      // new pods' gates stand in for its label), Ingresses in every namespace (the guard's check whether another
      // Ingress shares the ALB; unknown, the ELB-wide 5xx is not attributed to this release alone), IngressClasses
      // (then the class name decides).
      const reads = [...new Set(clusterScoped.map((e) => `${e.verb} ${e.objectRef?.resource ?? ''} → ${e.responseStatus?.code ?? '?'}`))].sort();
      for (const read of reads) assert.match(read, /^(get namespaces|list ingresses|list ingressclasses) → 403$/, `unexpected cluster-scoped call: ${reads.join(', ')}`);
    });
  },
  { realOnly: 'the embedded API server authenticates one bearer token and does not authorize (no RBAC, no audit log)' },
);
