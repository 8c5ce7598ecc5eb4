/**
 * Real kubectl against a running `alb-rollout lab up` process, as a newcomer would use the lab from another shell:
 * apply, get (with the READINESS GATES column), rollout status, wait, set image, rollout undo, lab.json's ALB URL
 * and response counts, and a clean Ctrl-C.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { SERVER_VERSION } from '../../src/lab/apiserver/discovery.js';
import { findSourceDir, readSource } from '../../src/lab/controlplane/build.js';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, root } from './helpers.js';

const KUBECTL_DIR = '/usr/lib/google-cloud-sdk/bin';
const NS = ['-n', 'game-2048'];
const OLD_IMAGE = 'public.ecr.aws/l6m2t8p7/docker-2048:latest';
const NEW_IMAGE = 'public.ecr.aws/l6m2t8p7/docker-2048:v2';

interface LabState {
  apiServer: string;
  controlPlane?: { tier: string; pids: Record<string, number> };
  albs: Array<{ ingress: string; hostname: string; url: string; responses: Record<string, number> }>;
  albCa?: string;
  pid: number;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { containers: Array<{ image: string }>; readinessGates?: Array<{ conditionType: string }> };
}

function tcpConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port }, () => {
      s.destroy();
      resolve('connected');
    });
    s.setTimeout(2000, () => s.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describeTiers('kubectl against `alb-rollout lab up`', (tier) => {
  let dir: string;
  let stateDir: string;
  let kubeconfig: string;
  let lab: ChildProcessWithoutNullStreams;
  let labOut = '';
  let labErr = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let exitedNow: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  const kubectl = (args: string[], options: { bin?: string; timeoutMs?: number } = {}): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(options.bin ?? 'kubectl', ['--kubeconfig', kubeconfig, ...args], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        stderr += `\n[test] kubectl ${args.join(' ')} killed after ${options.timeoutMs ?? 60_000} ms`;
        child.kill('SIGKILL');
      }, options.timeoutMs ?? 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });

  const ok = async (args: string[], options: { bin?: string; timeoutMs?: number } = {}): Promise<string> => {
    const r = await kubectl(args, options);
    assert.equal(r.code, 0, `${options.bin ?? 'kubectl'} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };

  const state = async (): Promise<LabState> => JSON.parse(await readFile(join(stateDir, 'lab.json'), 'utf8')) as LabState;

  const livePods = async (): Promise<PodJson[]> => {
    const out = await ok(['get', 'pods', ...NS, '-o', 'json']);
    return (JSON.parse(out) as { items: PodJson[] }).items.filter((p) => !p.metadata.deletionTimestamp);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'alb-lab-kubectl-'));
    stateDir = join(dir, 'state');
    kubeconfig = join(stateDir, 'kubeconfig');
    lab = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'lab', 'up', '--state-dir', stateDir, '--control-plane', tier], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, NODE_NO_WARNINGS: '1' },
    });
    lab.stdout.on('data', (d: Buffer) => (labOut += d.toString()));
    lab.stderr.on('data', (d: Buffer) => (labErr += d.toString()));
    exited = new Promise((resolve) =>
      lab.on('exit', (code, signal) => {
        exitedNow = { code, signal };
        resolve(exitedNow);
      }),
    );
    await waitFor(() => (exitedNow ? Promise.reject(new Error(`lab up exited: ${JSON.stringify(exitedNow)}\n${labOut}\n${labErr}`)) : existsSync(join(stateDir, 'lab.json')) && existsSync(kubeconfig)), {
      timeoutMs: tier === 'real' ? 90_000 : 30_000,
      what: 'lab up to write lab.json and kubeconfig',
      describe: () => `${labOut}\n${labErr}`,
    });
  });

  after(async () => {
    if (!exitedNow && lab.pid) process.kill(lab.pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('announces itself and writes lab.json with the API server and its own pid', async () => {
    assert.match(labOut, /lab is up/);
    const s = await state();
    assert.equal(s.pid, lab.pid);
    assert.match(s.apiServer, tier === 'real' ? /^https:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(s.albs, []);
    // The CA of the ALBs' HTTPS listeners, for NODE_EXTRA_CA_CERTS / curl --cacert.
    assert.equal(s.albCa, join(stateDir, 'alb-ca.pem'));
    assert.match(await readFile(s.albCa, 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    assert.match(labOut, /ALB TLS CA +\S+alb-ca\.pem/);
  });

  it('kubectl version reports the server version (the pinned Kubernetes release on the real tier); /livez/etcd answers ok', async () => {
    const expected = tier === 'real' ? (await readSource(findSourceDir(root))).kubernetesVersion : SERVER_VERSION.gitVersion;
    const v = JSON.parse(await ok(['version', '-o', 'json'])) as { serverVersion?: { gitVersion?: string } };
    assert.equal(v.serverVersion?.gitVersion, expected);
    assert.match(await ok(['version']), new RegExp(`^Server Version: ${expected.replace(/\./g, '\\.')}$`, 'm'));
    assert.equal((await ok(['get', '--raw', '/livez/etcd'])).trim(), 'ok');
  });

  it('kubectl apply --server-side -f examples/2048/safe (client-side validation on)', async () => {
    const out = await ok(['apply', '--server-side', '-f', 'examples/2048/safe']);
    for (const o of ['namespace/game-2048', 'service/service-2048', 'ingress.networking.k8s.io/ingress-2048', 'deployment.apps/deployment-2048']) {
      assert.match(out, new RegExp(`${o.replace(/\./g, '\\.')} serverside-applied`));
    }
  });

  it('kubectl rollout status and kubectl wait --for=condition=available', async () => {
    const status = await ok(['rollout', 'status', 'deployment/deployment-2048', ...NS, '--timeout=60s'], { timeoutMs: 70_000 });
    assert.match(status, /deployment "deployment-2048" successfully rolled out/);
    const wait = await ok(['wait', '--for=condition=available', 'deployment/deployment-2048', ...NS, '--timeout=60s'], { timeoutMs: 70_000 });
    assert.match(wait, /deployment\.apps\/deployment-2048 condition met/);
  });

  it('lab.json lists the ALB with its URL and counts the requests sent to it', async () => {
    const alb = await waitFor(async () => (await state()).albs[0], { timeoutMs: 15_000, what: 'the ALB in lab.json' });
    assert.equal(alb.ingress, 'game-2048/ingress-2048');
    assert.match(alb.hostname, /^k8s-game2048-ingress2-[0-9a-f]+-\d+\.us-east-1\.elb\.amazonaws\.com$/);
    assert.match(alb.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    // Healthy targets reach the ALB's routing table after its registration propagation (as on AWS): wait for it.
    await waitFor(async () => ((await fetch(alb.url)).status === 200 ? true : undefined), { timeoutMs: 30_000, what: 'the ALB routing to the new targets' });
    const before200 = (await state()).albs[0]?.responses['200'] ?? 0;
    const sent = 25;
    for (let i = 0; i < sent; i++) {
      const res = await fetch(alb.url);
      assert.equal(res.status, 200, `request ${i} through the ALB`);
      assert.match(await res.text(), /version=latest/);
    }
    // lab.json is rewritten every 2 s.
    const counted = await waitFor(
      async () => {
        const n = (await state()).albs[0]?.responses['200'] ?? 0;
        return n >= before200 + sent ? n : undefined;
      },
      { timeoutMs: 10_000, what: `lab.json to count ${sent} more 200s`, describe: () => `before: ${before200}` },
    );
    assert.ok(counted >= before200 + sent);
  });

  it('kubectl set image: new pods carry the gate and READINESS GATES shows 1/1 once their targets are healthy', async () => {
    await waitFor(async () => /k8s-game2048-service2-/.test(await ok(['get', 'targetgroupbindings', ...NS])) || undefined, {
      timeoutMs: 15_000,
      what: 'the TargetGroupBinding',
    });
    await ok(['set', 'image', 'deployment/deployment-2048', ...NS, `app-2048=${NEW_IMAGE}`]);
    const status = await ok(['rollout', 'status', 'deployment/deployment-2048', ...NS, '--timeout=90s'], { timeoutMs: 100_000 });
    assert.match(status, /successfully rolled out/);
    let last = '';
    await waitFor(
      async () => {
        last = await ok(['get', 'pods', ...NS, '-o', 'wide']);
        const lines = last.trim().split('\n');
        const header = lines[0] ?? '';
        if (!/READINESS GATES\s*$/.test(header)) return undefined;
        const running = lines.slice(1).filter((l) => /\sRunning\s/.test(l));
        return running.length === 5 && running.every((l) => /\s1\/1\s*$/.test(l)) ? true : undefined;
      },
      { timeoutMs: 30_000, what: '5 Running pods with READINESS GATES 1/1', describe: () => last },
    );
    const pods = await livePods();
    assert.equal(pods.length, 5);
    for (const p of pods) {
      assert.equal(p.spec.containers[0]?.image, NEW_IMAGE, p.metadata.name);
      assert.match(p.spec.readinessGates?.[0]?.conditionType ?? '', /^target-health\.elbv2\.k8s\.aws\/k8s-game2048-service2-[0-9a-f]{10}$/);
    }
  });

  it("kubectl get pods -o wide shows the pods' virtual IPs (status.podIP), which no socket binds", async () => {
    const table = await ok(['get', 'pods', ...NS, '-o', 'wide']);
    const header = table.split('\n')[0] ?? '';
    const ipColumn = header.indexOf(' IP ') + 1;
    assert.ok(ipColumn > 0, header);
    const rows = table.trim().split('\n').slice(1).filter((l) => /\sRunning\s/.test(l));
    const shown = rows.map((l) => l.slice(ipColumn).split(/\s+/)[0] ?? '');
    const byJson = (JSON.parse(await ok(['get', 'pods', ...NS, '-o', 'json'])) as { items: Array<{ metadata: { name: string; deletionTimestamp?: string }; status: { podIP?: string; phase?: string } }> }).items
      .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running')
      .map((p) => p.status.podIP ?? '');
    assert.equal(shown.length, 5, table);
    assert.deepEqual([...shown].sort(), [...byJson].sort(), 'the IP column is status.podIP');
    assert.equal(new Set(shown).size, 5, 'one IP per pod');
    // The real tier's range lies outside loopback (a real API server rejects loopback endpoints).
    const range = tier === 'real' ? /^198\.18\.\d+\.\d+$/ : /^127\.10\.\d+\.\d+$/;
    for (const ip of shown) assert.match(ip, range, `the lab's default pod range: ${ip}`);
    // The pods serve through the ALB (the previous test), yet nothing listens on ip:80 itself: the kubelet's
    // listeners are on 127.0.0.1 with ephemeral ports. (Only loopback is ever dialled: not the real tier's range.)
    if (tier === 'embedded') for (const ip of shown) assert.equal(await tcpConnect(ip, 80), 'ECONNREFUSED', `${ip}:80 is not bound`);
  });

  it('kubectl rollout undo brings the old image back on the old ReplicaSet', async () => {
    const rsBefore = JSON.parse(await ok(['get', 'rs', ...NS, '-o', 'json'])) as { items: Array<{ metadata: { name: string; annotations: Record<string, string> }; spec: { template: { spec: { containers: Array<{ image: string }> } } } }> };
    const oldRs = rsBefore.items.find((rs) => rs.spec.template.spec.containers[0]?.image === OLD_IMAGE);
    assert.ok(oldRs, 'the revision-1 ReplicaSet');
    const undo = await ok(['rollout', 'undo', 'deployment/deployment-2048', ...NS]);
    assert.match(undo, /deployment\.apps\/deployment-2048 rolled back/);
    await ok(['rollout', 'status', 'deployment/deployment-2048', ...NS, '--timeout=90s'], { timeoutMs: 100_000 });
    const pods = await livePods();
    assert.equal(pods.length, 5);
    for (const p of pods) assert.equal(p.spec.containers[0]?.image, OLD_IMAGE, `${p.metadata.name} runs the old image again`);
    // Like the real controller, the undo scales the old ReplicaSet back up (revision 1 becomes revision 3).
    const hash = oldRs.metadata.name.slice('deployment-2048-'.length);
    for (const p of pods) assert.equal(p.metadata.labels?.['pod-template-hash'], hash);
    const rsAfter = JSON.parse(await ok(['get', 'rs', ...NS, '-o', 'json'])) as typeof rsBefore;
    assert.equal(rsAfter.items.length, 2, rsAfter.items.map((r) => r.metadata.name).join(', '));
    assert.equal(rsAfter.items.find((r) => r.metadata.name === oldRs.metadata.name)?.metadata.annotations['deployment.kubernetes.io/revision'], '3');
    // The v2 targets drain while the ALB's deregistration propagates (as on AWS): wait until only latest answers.
    const url = (await state()).albs[0]?.url as string;
    await waitFor(
      async () => {
        const res = await fetch(url);
        return res.status === 200 && /version=latest/.test(await res.text()) ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'the ALB serving the old image (version=latest) again' },
    );
  });

  const podIp = tier === 'real' ? '198\\.18\\.\\d+\\.\\d+' : '127\\.\\d+\\.\\d+\\.\\d+';
  for (const version of ['1.27', '1.32', '1.33']) {
    it(`kubectl ${version} (by path): apply --server-side and get pods -o wide`, async () => {
      const bin = join(KUBECTL_DIR, `kubectl.${version}`);
      const v = await ok(['version', '--client', '-o', 'json'], { bin });
      assert.match(v, new RegExp(`"gitVersion": "v${version.replace('.', '\\.')}\\.`));
      const applied = await ok(['apply', '--server-side', '-f', 'examples/2048/safe'], { bin });
      assert.match(applied, /deployment\.apps\/deployment-2048 serverside-applied/);
      const table = await ok(['get', 'pods', ...NS, '-o', 'wide'], { bin });
      assert.match(table.split('\n')[0] ?? '', /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
      assert.match(table, new RegExp(`deployment-2048-\\S+\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${podIp}\\s+lab-node-1\\s`));
    });
  }

  it('stops cleanly on SIGINT (exit 0)', async () => {
    const s = await state();
    process.kill(lab.pid as number, 'SIGINT');
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref());
    const result = await Promise.race([exited, timeout]);
    assert.notEqual(result, 'timeout', `lab up did not exit within 20 s of SIGINT:\n${labErr}`);
    assert.deepEqual(result, { code: 0, signal: null }, labErr);
    assert.match(labErr, /SIGINT: stopping the lab…\nlab stopped\n$/);
    assert.doesNotMatch(labErr, /error|warn|unhandled/i);
    // Nothing is left listening.
    const apiGone = await fetch(`${s.apiServer}/version`).then(() => false, () => true);
    assert.ok(apiGone, 'the API server no longer answers');
    if (tier === 'real') {
      // Every control-plane process is gone (no strays).
      const pids = Object.entries(s.controlPlane?.pids ?? {});
      assert.equal(pids.length, 4, JSON.stringify(s.controlPlane));
      for (const [name, pid] of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `${name} (pid ${pid}) still runs`);
    }
  });
});
