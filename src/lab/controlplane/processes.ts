/**
 * Starts a real control plane from the multi-call binary: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler, each a child process (in the lab's session: see `start`), on free 127.0.0.1 ports, with certificates,
 * tokens and service-account keys generated for this run. `stop()` (and the exit of this process) ends every one of
 * them; the binary also ends itself when its parent is gone (CONTROLPLANE_PARENT_PID), so a killed lab leaves no
 * strays.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { issueCert, newCa, newSigningKey, type KeyPair } from './certs.js';

/** The controllers the lab needs from kube-controller-manager (its own kubelet, scheduler and LBC do the rest). */
export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'statefulset-controller',
  // DaemonSet pods are bound by the scheduler (node affinity); the lab's one Node is registered Ready and untainted.
  'daemonset-controller',
  'endpointslice-controller',
  'endpoints-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'job-controller',
  'root-ca-certificate-publisher-controller',
];

export interface ControlPlaneOptions {
  binary: string;
  /** Certificates, kubeconfigs, etcd data and the component logs go here. */
  dir: string;
  /** The bearer token the user's kubeconfig carries (generated when unset). */
  token?: string;
  log: (line: string) => void;
  /** How long to wait for the API server to answer /readyz (default 60 s). */
  readyTimeoutMs?: number;
}

export interface ControlPlane {
  url: string;
  /** PEM of the cluster CA (the API server's serving certificate and the webhook's are signed by it). */
  caPem: string;
  ca: KeyPair;
  token: string;
  etcdUrl: string;
  dir: string;
  /** pid of each component. */
  pids(): Record<string, number>;
  stop(): Promise<void>;
}

interface Child {
  name: string;
  proc: ChildProcess;
  logPath: string;
  exited: boolean;
}

const SERVICE_CIDR = '10.96.0.0/16';
const AUDIT_POLICY = 'audit-policy.yaml';
/** The API server's audit log (JSON lines) in the control plane's directory: every request a ServiceAccount made. */
export const AUDIT_LOG = 'audit.log';
const CONTROL_PLANE_NICE = 19;

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = options.dir;
  await mkdir(join(dir, 'pki'), { recursive: true });
  const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = await freePorts(5);
  const url = `https://127.0.0.1:${apiPort}`;
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;

  const ca = newCa('alb-rollout-lab-ca');
  const serving = issueCert(ca, {
    commonName: 'kube-apiserver',
    hosts: ['localhost', '127.0.0.1', '10.96.0.1', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    usage: 'server',
  });
  const sa = newSigningKey();
  const token = options.token ?? randomBytes(24).toString('hex');
  const componentToken = randomBytes(24).toString('hex');
  const pki = (f: string): string => join(dir, 'pki', f);
  await Promise.all([
    writeFile(pki('ca.crt'), ca.certPem),
    writeFile(pki('ca.key'), ca.keyPem, { mode: 0o600 }),
    writeFile(pki('apiserver.crt'), serving.certPem),
    writeFile(pki('apiserver.key'), serving.keyPem, { mode: 0o600 }),
    writeFile(pki('sa.key'), sa.privatePem, { mode: 0o600 }),
    writeFile(pki('sa.pub'), sa.publicPem),
    // token,user,uid,"groups"
    writeFile(pki('tokens.csv'), `${token},lab-admin,lab-admin,"system:masters"\n${componentToken},lab-components,lab-components,"system:masters"\n`, { mode: 0o600 }),
    writeFile(join(dir, 'components.kubeconfig'), componentKubeconfig(url, pki('ca.crt'), componentToken), { mode: 0o600 }),
    // Requests by ServiceAccounts only (a deployer with least privilege in the e2e tests), at Metadata level: who
    // asked for what, where, and the answer code. The lab's own components use tokens, so the log stays small.
    writeFile(join(dir, AUDIT_POLICY), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n    userGroups: ["system:serviceaccounts"]\n  - level: None\n'),
  ]);

  const children: Child[] = [];
  const env = { ...process.env, CONTROLPLANE_PARENT_PID: String(process.pid) };
  const start = (name: string, args: string[]): Child => {
    const logPath = join(dir, `${name}.log`);
    const out = createWriteStream(logPath);
    // Not detached: a process that starts a session of its own is, with Linux's autogroup scheduling (the default of
    // most distributions), weighed against the lab's process as a group of its own, whatever its nice value, so each
    // component took a full share and on a loaded machine the lab's pods and ALB answered health checks and probes
    // late. In the lab's session, nice 19 puts them behind the lab and the session competes with others as one.
    // Each component is one process with no children of its own, so signalling its pid stops all of it.
    const proc = spawn(options.binary, [name, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.pipe(out);
    proc.stderr?.pipe(out);
    const child: Child = { name, proc, logPath, exited: false };
    // The pods, the ALB and the traffic live in the lab's own process: under CPU contention they must win over the
    // control plane, whose latency only delays reconciles (as on a busy cluster), never a request's answer.
    if (proc.pid !== undefined) {
      try {
        setPriority(proc.pid, CONTROL_PLANE_NICE);
      } catch {
        // not permitted: run at the same priority
      }
    }
    proc.on('exit', (code, signal) => {
      child.exited = true;
      if (!stopping) options.log(`control plane: ${name} exited (${signal ?? `code ${code}`}); its log: ${logPath}`);
    });
    children.push(child);
    return child;
  };
  let stopping = false;
  const killAll = (signal: NodeJS.Signals): void => {
    for (const c of children) {
      if (c.exited || c.proc.pid === undefined) continue;
      try {
        process.kill(c.proc.pid, signal);
      } catch {
        // already gone
      }
    }
  };
  const onExit = (): void => killAll('SIGKILL');
  process.once('exit', onExit);

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.off('exit', onExit);
    // Reverse order: the clients first, etcd last.
    for (const c of [...children].reverse()) {
      if (c.exited || c.proc.pid === undefined) continue;
      try {
        process.kill(c.proc.pid, 'SIGTERM');
      } catch {
        continue;
      }
      const gone = await waitExit(c, 5000);
      if (!gone) {
        try {
          process.kill(c.proc.pid, 'SIGKILL');
        } catch {
          // gone
        }
        await waitExit(c, 2000);
      }
    }
  };

  try {
    const etcd = start('etcd', [
      '--name=lab',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=lab=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
      '--quota-backend-bytes=2147483648',
    ]);
    await waitFor(`etcd on ${etcdUrl}`, etcd, 30_000, async () => (await httpGet(`${etcdUrl}/health`)).includes('true'));

    const api = start('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'pki')}`,
      `--tls-cert-file=${pki('apiserver.crt')}`,
      `--tls-private-key-file=${pki('apiserver.key')}`,
      `--client-ca-file=${pki('ca.crt')}`,
      `--token-auth-file=${pki('tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki('sa.pub')}`,
      `--service-account-signing-key-file=${pki('sa.key')}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--authorization-mode=RBAC',
      `--audit-policy-file=${join(dir, AUDIT_POLICY)}`,
      `--audit-log-path=${join(dir, AUDIT_LOG)}`,
      '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,LimitRanger',
      // It taints new Nodes not-ready until the node lifecycle controller clears it; the lab runs no such controller
      // (its kubelet sends no heartbeats), so the Node is registered Ready and untainted.
      '--disable-admission-plugins=TaintNodesByCondition',
      // The "kubernetes" Service's endpoints would be 127.0.0.1, which Endpoints validation rejects.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      '--v=1',
    ]);
    const deadline = options.readyTimeoutMs ?? 60_000;
    await waitFor(`kube-apiserver on ${url}`, api, deadline, async () => (await httpsGet(`${url}/readyz`, ca.certPem, token)) === 'ok');

    // What the controller manager and the scheduler share: the API server through one kubeconfig, no leader
    // election (one replica), their own HTTPS endpoint on loopback.
    const clientFlags = (port: number, certDir: string): string[] => {
      const kubeconfig = join(dir, 'components.kubeconfig');
      return [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${join(dir, 'pki', certDir)}`,
        '--profiling=false',
        '--v=1',
      ];
    };
    start('kube-controller-manager', [
      ...clientFlags(kcmPort, 'kcm'),
      `--controllers=${CONTROLLERS.join(',')}`,
      `--root-ca-file=${pki('ca.crt')}`,
      `--service-account-private-key-file=${pki('sa.key')}`,
      '--use-service-account-credentials=false',
    ]);
    start('kube-scheduler', clientFlags(schedPort, 'scheduler'));
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url,
    caPem: ca.certPem,
    ca,
    token,
    etcdUrl,
    dir,
    pids: () => Object.fromEntries(children.filter((c) => c.proc.pid !== undefined).map((c) => [c.name, c.proc.pid as number])),
    stop,
  };
}

function componentKubeconfig(url: string, caFile: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'lab', cluster: { server: url, 'certificate-authority': caFile } }],
    users: [{ name: 'lab', user: { token } }],
    contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'lab' } }],
    'current-context': 'lab',
  });
}

async function waitFor(what: string, child: Child, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`${child.name} exited while starting; the end of its log (${child.logPath}):\n${await tail(child.logPath)}`);
    try {
      if (await ready()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} was not ready within ${Math.round(timeoutMs / 1000)}s${last ? ` (last error: ${last})` : ''}; the end of its log (${child.logPath}):\n${await tail(child.logPath)}`);
}

async function tail(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim().split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

function waitExit(c: Child, ms: number): Promise<boolean> {
  if (c.exited) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    c.proc.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    return typeof a === 'object' && a ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function httpGet(url: string): Promise<string> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.text());
}

function httpsGet(url: string, ca: string, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body.trim()));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
