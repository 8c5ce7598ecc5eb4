import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlbCloud } from './alb/index.js';
import { LabApiServer, writeKubeconfig, type ApiFaults } from './apiserver/index.js';
import { ec2NetworkOf, providerIdForNode, startAwsApis, type AwsApis, type AwsFaults } from './aws/index.js';
import type { ClusterAccess } from './cluster.js';
import { ControlPlaneStartError } from './controlplane/build.js';
import { issueCert } from './controlplane/certs.js';
import { RealCluster } from './controlplane/cluster.js';
import { installCrd, startWebhookServer, targetGroupBindingCrd, urlWebhookConfiguration } from './controlplane/lbc-parts.js';
import { startControlPlane, type ControlPlane } from './controlplane/processes.js';
import { startControllers } from './controllers/index.js';
import { Kubelet, analysisImage, realTierIpRange, type TokenRequest } from './kubelet/index.js';
import { findCli } from './kubelet/process.js';
import { startArgoRollouts } from './argo/run.js';
import { FaultControlServer, FaultInjector, assertFaultsAvailable, formatFaults, type FaultChange, type LabFaults } from './faults.js';
import { startLbc, type Lbc } from './lbc/index.js';
import { installRealLbcObjects, startRealLbc } from './reallbc/run.js';
import { LabNetwork } from './network.js';
import { ObjectStore } from './store.js';
import { LabRandom } from './random.js';
import { LabClock, timingsFor, type LabTimings, type TimingProfile } from './timing.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';

/**
 * The embedded lab: a simulated EKS cluster (API server, controllers, kubelet), the AWS Load Balancer Controller,
 * an ALB with a real HTTP data plane, and the ELBv2/CloudWatch APIs — all on loopback, in this process.
 */

/** embedded: this repo's API server and controllers in-process; real: etcd + kube-apiserver + kube-controller-manager + kube-scheduler. */
export type ControlPlaneTier = 'embedded' | 'real';

/** emulated: the lab's port of the AWS Load Balancer Controller (src/lab/lbc); real: the controller's own binary (real control plane only). */
export type LbcTier = 'emulated' | 'real';

/** The kinds the lab's own parts (and the tests) read on the real tier: each is one watch-fed cache. */
const REAL_TIER_KINDS = [
  'Namespace',
  'Node',
  'Pod',
  'Service',
  'EndpointSlice',
  'Ingress',
  'IngressClass',
  'TargetGroupBinding',
  'Event',
  'MutatingWebhookConfiguration',
  'Deployment',
  'ReplicaSet',
];

export interface LabOptions {
  /** Default embedded. real needs `binary` (the built control plane, see controlplane/build.ts). */
  controlPlane?: ControlPlaneTier;
  /** The multi-call control-plane binary (real tier). */
  binary?: string;
  /** Default emulated. real needs the real control plane, `realLbc.binary` and `realLbc.moduleDir` (see reallbc/). */
  lbc?: LbcTier;
  realLbc?: { binary: string; moduleDir: string };
  /** `fast` (default: constant delays) or `realistic` (distributions with tails; see docs/lab-timings.md). */
  profile?: TimingProfile;
  /** Overrides on top of the profile (e.g. timeScale). */
  timings?: Partial<LabTimings>;
  /** Seed of the lab's one PRNG (delays, fault injection, load-balancer choices, generated names). Default 1. */
  seed?: number;
  region?: string;
  clusterName?: string;
  /** false: the readiness-gate webhook is down (failurePolicy Ignore: pods are admitted without gates). */
  webhookEnabled?: boolean;
  /** Require this bearer token on the API server (written into the kubeconfig). */
  token?: string;
  /** Where `kubeconfig`, `aws.env` and `lab.json` are written; nothing is written when unset. */
  stateDir?: string;
  apiFaults?: ApiFaults;
  awsFaults?: AwsFaults;
  /** Faults applied at start (`lab up --faults`), through the same injector as `lab fault` (parseFaultSpec). */
  faults?: FaultChange;
  /**
   * Real tier: run the real Argo Rollouts controller (built by `lab build --argo-rollouts`; `moduleDir` is its
   * module in the Go module cache, for the CRDs). See docs/argo-rollouts.md.
   */
  argoRollouts?: { binary: string; moduleDir: string };
  /**
   * Real tier: containers with this image repository name run `dist/cli.js` as a real process (default
   * `alb-rollout`, the Dockerfile's image; see kubelet/process.ts). `false`: no image runs as a process.
   */
  analysisImage?: string | false;
  log?: (line: string) => void;
}

export interface AlbInfo {
  ingress: string;
  hostname: string;
  /** The local URL of its HTTP listener (port 80 first); an HTTPS-only ALB's is its first HTTPS listener's. */
  url: string;
  /** The local URL of its first HTTPS listener (TLS with the lab CA's certificates: `albCa` in lab.json). */
  httpsUrl?: string;
  /** Every listener and the local URL that serves it. */
  listeners: Array<{ port: number; protocol: string; url: string }>;
  responses: Record<string, number>;
}

/** One load balancer of the lab's account, whoever made it (an IngressGroup, a Service, or an ELBv2 API caller). */
export interface LoadBalancerInfo {
  name: string;
  arn: string;
  type: 'application' | 'network';
  hostname: string;
  /** ALB: the local URL of its HTTP:80 listener. NLB: absent (see `listeners`). */
  url?: string;
  /** Every listener and the local address that serves it (`http://127.0.0.1:p` for ALB, `127.0.0.1:p` for NLB TCP). */
  listeners: Array<{ port: number; protocol: string; address: string }>;
  /** Ingresses (`ns/name`) whose status names this load balancer (every member of an IngressGroup). */
  ingresses: string[];
  /** Services (`ns/name`) it sends traffic to: through TargetGroupBindings of its target groups, or as the NLB of a Service. */
  services: string[];
  /** `ingress` (LBC, an IngressGroup), `service` (LBC, an NLB Service), or `api` (made through the ELBv2 API, e.g. by Terraform). */
  createdBy: 'ingress' | 'service' | 'api';
  /** ALB: responses by status code. NLB: client connections by outcome (`forwarded`, `reset-no-target`, `reset-refused`, `reset-timeout`). */
  responses: Record<string, number>;
}

export interface Lab {
  readonly controlPlane: ControlPlaneTier;
  /** The cluster as the lab's parts see it: the object store (embedded) or a watch-fed cache of the real API server. */
  readonly store: ClusterAccess;
  /** Embedded tier only: the in-process store (fault injection such as compaction). */
  readonly objectStore?: ObjectStore;
  readonly clock: LabClock;
  readonly alb: AlbCloud;
  readonly kubelet: Kubelet;
  /** The running LBC (a new one after `lbc=restart`). */
  readonly lbc: Lbc;
  /** Faults in force; change them with `setFaults` (or `lab fault --lab DIR` through the control endpoint). */
  readonly faults: LabFaults;
  setFaults(change: FaultChange): Promise<LabFaults>;
  /** The loopback control endpoint (`GET|POST /faults`); recorded as `control` in lab.json. */
  readonly controlUrl: string;
  /** Embedded tier only. */
  readonly api?: LabApiServer;
  /** Real tier only: the component processes (with `argo-rollouts` when it runs). */
  readonly real?: { pids(): Record<string, number>; dir: string; argoRolloutsLog?: string };
  readonly aws: AwsApis;
  readonly apiServerUrl: string;
  readonly region: string;
  /** Set when a state dir was given. */
  readonly kubeconfigPath?: string;
  /** With a state dir: the PEM file of the CA behind the ALBs' HTTPS listeners (what NODE_EXTRA_CA_CERTS names to trust them). */
  readonly albCaFile?: string;
  /** AWS SDK environment (region, dummy credentials, AWS_ENDPOINT_URL_*). */
  awsEnv(): Record<string, string>;
  /** Every Ingress with an ALB: its hostname, the local URL to send requests to, and responses so far. */
  albs(): AlbInfo[];
  /** Writes a kubeconfig for this lab's API server (the state dir has one already). */
  writeKubeconfig(path: string): Promise<void>;
  /** Every load balancer (ALB and NLB) with its hostname, local addresses, and the Ingresses/Services it serves. */
  loadBalancers(): LoadBalancerInfo[];
  /** Rewrites lab.json (it is also refreshed every few seconds while the lab runs with a state dir). */
  writeState(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLab(options: LabOptions = {}): Promise<Lab> {
  if (options.controlPlane === 'real') return startRealLab(options);
  if (options.lbc === 'real') throw new Error('startLab: lbc real needs controlPlane real (the controller talks to a real API server)');
  if (options.argoRollouts) throw new Error('startLab: argoRollouts needs the real control plane (controlPlane: real)');
  const { timings, seed, clock } = labClock(options);
  const region = options.region ?? 'us-east-1';
  const store = new ObjectStore({ uids: clock.stream('store/uids') });
  const log = options.log ?? (() => undefined);
  const api = new LabApiServer({
    store,
    random: clock.stream('apiserver/faults').fn(),
    names: clock.stream('apiserver/names'),
    ...(options.token ? { token: options.token } : {}),
    ...(options.apiFaults ? { faults: options.apiFaults } : {}),
  });
  const { url: apiServerUrl } = await api.start();
  // One pod network: the kubelet maps pod IPs to its listeners, the ALB connects through it.
  const network = new LabNetwork();
  const alb = new AlbCloud({ clock, region, network });
  const aws = await startAwsApis({
    alb,
    clock,
    network: ec2NetworkOf(store),
    ...(options.clusterName ? { clusterName: options.clusterName } : {}),
    ...(options.awsFaults ? { faults: options.awsFaults } : {}),
  });
  const controllers = startControllers(store, clock, { log });
  const kubelet = new Kubelet(store, clock, { log, network, providerID: providerIdForNode(region, { name: 'lab-node-1', zoneIndex: 0 }) });
  kubelet.start();
  const faults = await lbcWithFaults({
    clock,
    account: aws.account,
    api,
    kubelet,
    webhookEnabled: options.webhookEnabled ?? true,
    ...(options.faults ? { faults: options.faults } : {}),
    newLbc: (webhookEnabled) =>
      startLbc({
        store,
        clock,
        alb,
        region,
        account: aws.account,
        webhookEnabled,
        ...(options.clusterName ? { clusterName: options.clusterName } : {}),
      }),
  });

  const lab = await finishLab({
    options,
    timings,
    clock,
    region,
    store,
    alb,
    aws,
    kubelet,
    faults,
    seed,
    apiServerUrl,
    writeKubeconfig: (path) => writeKubeconfig(path, apiServerUrl, options.token),
    tier: { controlPlane: 'embedded', objectStore: store, api },
    stop: async () => {
      await faults.stop();
      await controllers.stop();
      await kubelet.stop();
      await Promise.all([alb.stop(), aws.stop(), api.stop()]);
    },
  });
  return lab;
}

interface LabParts {
  options: LabOptions;
  timings: LabTimings;
  clock: LabClock;
  region: string;
  store: ClusterAccess;
  alb: AlbCloud;
  aws: AwsApis;
  kubelet: Kubelet;
  /** The LBC (restartable) and the fault injector driving it. */
  faults: LbcWithFaults;
  seed: number;
  apiServerUrl: string;
  writeKubeconfig: (path: string) => Promise<void>;
  /** Real tier: what lab.json says about the control plane (its process ids). */
  controlPlane?: () => { tier: ControlPlaneTier; lbc?: LbcTier; kubernetesVersion?: string; pids: Record<string, number> };
  /** What only one tier has. Put into the handle as is (never spread the handle: `lbc` and `faults` are getters). */
  tier: Pick<Lab, 'controlPlane' | 'objectStore' | 'api' | 'real'>;
  stop: () => Promise<void>;
}

/** What both tiers share: the state directory (kubeconfig, aws.env, lab.json) and the Lab handle. */
async function finishLab(p: LabParts): Promise<Lab> {
  const { options, timings, region, store, alb, aws, kubelet, faults, seed, apiServerUrl, clock } = p;
  const stateDir = options.stateDir;
  const control = new FaultControlServer(faults.injector);
  const controlUrl = await control.listen();
  const kubeconfigPath = stateDir ? join(stateDir, 'kubeconfig') : undefined;
  const albCaFile = stateDir ? join(stateDir, 'alb-ca.pem') : undefined;

  const albs = (): AlbInfo[] => {
    const out: AlbInfo[] = [];
    for (const ing of store.list('Ingress').items) {
      const lbIngress = (((ing.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress ?? []) as JsonObject[];
      const hostname = lbIngress[0]?.hostname;
      if (typeof hostname !== 'string') continue;
      const base = alb.dataPlaneUrlForHostname(hostname);
      if (!base) continue;
      const lb = alb.loadBalancerArnForHostname(hostname);
      const listeners = (lb ? alb.loadBalancerSummaries().find((x) => x.arn === lb)?.listeners ?? [] : []).map((l) => ({ port: l.port, protocol: l.protocol, url: l.address }));
      const https = listeners.find((l) => l.protocol === 'HTTPS');
      const url = listeners.some((l) => l.protocol === 'HTTP') || !https ? base : https.url;
      const counters = lb ? alb.stats(lb) : undefined;
      out.push({ ingress: `${ing.metadata.namespace}/${ing.metadata.name}`, hostname, url, ...(https ? { httpsUrl: https.url } : {}), listeners, responses: counters ? { ...counters.byStatus } : {} });
    }
    return out;
  };

  const statusHostname = (obj: KubeObject): string | undefined => {
    const lbIngress = (((obj.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress ?? []) as JsonObject[];
    const h = lbIngress[0]?.hostname;
    return typeof h === 'string' ? h.toLowerCase() : undefined;
  };

  const loadBalancers = (): LoadBalancerInfo[] => {
    const ingresses = store.list('Ingress').items;
    const services = store.list('Service').items;
    const tgbs = store.list('TargetGroupBinding').items;
    return alb.loadBalancerSummaries().map((lb) => {
      const tgSet = new Set(lb.targetGroupArns);
      const served = new Set<string>();
      for (const t of tgbs) {
        const spec = (t.spec ?? {}) as JsonObject;
        const svc = (spec.serviceRef as JsonObject | undefined)?.name;
        if (typeof spec.targetGroupARN === 'string' && tgSet.has(spec.targetGroupARN) && typeof svc === 'string') served.add(`${t.metadata.namespace}/${svc}`);
      }
      for (const svc of services) if (statusHostname(svc) === lb.dnsName) served.add(`${svc.metadata.namespace}/${svc.metadata.name}`);
      const createdBy = lb.tags['ingress.k8s.aws/stack'] !== undefined ? 'ingress' : lb.tags['service.k8s.aws/stack'] !== undefined ? 'service' : 'api';
      return {
        name: lb.name,
        arn: lb.arn,
        type: lb.type,
        hostname: lb.dnsName,
        ...(lb.type === 'application' ? { url: alb.dataPlaneUrl(lb.arn) } : {}),
        listeners: lb.listeners,
        ingresses: ingresses.filter((i) => statusHostname(i) === lb.dnsName).map((i) => `${i.metadata.namespace}/${i.metadata.name}`),
        services: [...served].sort(),
        createdBy,
        responses: lb.type === 'network' ? alb.connectionStats(lb.arn) : { ...alb.stats(lb.arn).byStatus },
      };
    });
  };

  const awsEnv = (): Record<string, string> => ({ ...aws.env });

  let stateWrites = 0;
  const writeState = async (): Promise<void> => {
    if (!stateDir) return;
    const state = {
      apiServer: apiServerUrl,
      kubeconfig: kubeconfigPath,
      aws: { region, elbv2: aws.elbv2Url, cloudwatch: aws.cloudwatchUrl, ec2: aws.ec2Url },
      timeScale: timings.timeScale,
      timings: timings.profile ?? 'fast',
      seed,
      /** With timeScale: what `deploy/analyze --time-origin` need to read the lab's CloudWatch clock. */
      timeOrigin: alb.epoch.originMs,
      /** `alb-rollout lab fault --lab DIR SPEC` posts SPEC here. */
      control: controlUrl,
      faults: formatFaults(faults.injector.faults),
      albs: albs(),
      /** The CA of the ALBs' HTTPS listeners: trust it to probe them (NODE_EXTRA_CA_CERTS=<this file>). */
      ...(albCaFile ? { albCa: albCaFile } : {}),
      loadBalancers: loadBalancers(),
      pid: process.pid,
      ...(p.controlPlane ? { controlPlane: p.controlPlane() } : {}),
    };
    // One temporary file per write: the 2 s refresher and an explicit writeState() may overlap.
    const tmp = join(stateDir, `.lab.json.${process.pid}.${++stateWrites}`);
    await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
    await rename(tmp, join(stateDir, 'lab.json'));
  };

  let refresher: NodeJS.Timeout | undefined;
  if (stateDir && kubeconfigPath) {
    await mkdir(stateDir, { recursive: true });
    await p.writeKubeconfig(kubeconfigPath);
    const env = Object.entries(aws.env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('\n');
    if (albCaFile) await writeFile(albCaFile, alb.certificates.caPem());
    await writeFile(join(stateDir, 'aws.env'), `# source this file: . ${join(stateDir, 'aws.env')}\n${env}\nexport KUBECONFIG=${shellQuote(kubeconfigPath)}\n`);
    await writeState();
    refresher = setInterval(() => void writeState().catch(() => undefined), 2000);
    refresher.unref();
  }

  let stopped = false;
  return {
    ...p.tier,
    store,
    clock,
    alb,
    kubelet,
    get lbc() {
      return faults.lbc();
    },
    get faults() {
      return faults.injector.faults;
    },
    setFaults: async (change) => {
      const f = await faults.injector.apply(change);
      await writeState().catch(() => undefined);
      return f;
    },
    controlUrl,
    aws,
    apiServerUrl,
    region,
    ...(kubeconfigPath ? { kubeconfigPath } : {}),
    ...(albCaFile ? { albCaFile } : {}),
    awsEnv,
    albs,
    writeKubeconfig: p.writeKubeconfig,
    loadBalancers,
    writeState,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (refresher) clearInterval(refresher);
      await control.close();
      await p.stop();
    },
  };
}

/**
 * The real tier: a real control plane in child processes, and the lab's own kubelet, LBC emulation, ALB and AWS
 * APIs attached to it over its API (the embedded controllers do not run: kube-controller-manager does their job).
 */
async function startRealLab(options: LabOptions): Promise<Lab> {
  if (!options.binary) throw new Error('startLab: controlPlane real needs options.binary (run `alb-rollout lab build --control-plane real`)');
  if (options.apiFaults) throw new Error('startLab: apiFaults are only injected by the embedded API server');
  const realLbc = options.lbc === 'real' ? options.realLbc : undefined;
  if (options.lbc === 'real' && !realLbc) throw new Error('startLab: lbc real needs options.realLbc (run `alb-rollout lab build --lbc real`)');
  if (options.faults) assertFaultsAvailable(options.faults, false, realLbc !== undefined); // before any process starts
  if (realLbc && options.webhookEnabled === false) throw new Error('startLab: webhookEnabled false is an emulation fault; the real controller serves its own webhook');
  const { timings, seed, clock } = labClock(options);
  const region = options.region ?? 'us-east-1';
  const log = options.log ?? (() => undefined);
  const ownDir = options.stateDir ? undefined : await mkdtemp(join(tmpdir(), 'alb-lab-real-'));
  const cpDir = options.stateDir ? join(options.stateDir, 'controlplane') : (ownDir as string);
  if (options.stateDir) await rm(cpDir, { recursive: true, force: true });
  let cp: ControlPlane;
  try {
    cp = await startControlPlane({ binary: options.binary, dir: cpDir, ...(options.token ? { token: options.token } : {}), log });
  } catch (err) {
    throw new ControlPlaneStartError((err as Error).message, cpDir);
  }
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch((err: Error) => log(`lab: stopping: ${err.message}`));
    await cp.stop();
    if (ownDir) await rm(ownDir, { recursive: true, force: true });
  };
  try {
    const cluster = new RealCluster({ url: cp.url, ca: cp.caPem, token: cp.token, kinds: REAL_TIER_KINDS, log });
    // The caches watch TargetGroupBindings: their CRD comes first (the controller's own with --lbc real).
    if (realLbc) await installRealLbcObjects(realLbc.moduleDir, (o) => applyClusterObject(cluster, o));
    else await installCrd(cluster, targetGroupBindingCrd());
    await cluster.start();
    stops.push(() => cluster.stop());
    const webhookCert = issueCert(cp.ca, { commonName: 'aws-load-balancer-webhook', hosts: ['127.0.0.1'], usage: 'server' });
    const webhook = realLbc ? undefined : await startWebhookServer(cluster, webhookCert, log);
    if (webhook) stops.push(() => webhook.stop());
    // Pod IPs outside loopback (a real API server rejects loopback endpoints), virtual like on the embedded tier.
    const network = new LabNetwork();
    const alb = new AlbCloud({ clock, region, network });
    const aws = await startAwsApis({
      alb,
      clock,
      network: ec2NetworkOf(cluster),
      ...(options.clusterName ? { clusterName: options.clusterName } : {}),
      ...(options.awsFaults ? { faults: options.awsFaults } : {}),
    });
    stops.push(() => Promise.all([alb.stop(), aws.stop()]).then(() => undefined));
    const api = new URL(cp.url);
    const processImages =
      options.analysisImage === false
        ? undefined
        : analysisImage({
            ...(options.analysisImage ? { image: options.analysisImage } : {}),
            cliPath: findCli(),
            rootDir: join(cpDir, 'pods'),
            apiServer: { host: api.hostname, port: Number(api.port) },
            caPem: cp.caPem,
            requestToken: (r) => requestToken(cluster, r),
            env: { ...aws.env, ...(options.stateDir ? { ALB_ROLLOUT_LAB: options.stateDir } : {}) },
          });
    const k = new Kubelet(cluster, clock, {
      log,
      waitForScheduler: true,
      podIPRange: realTierIpRange(),
      network,
      providerID: providerIdForNode(region, { name: 'lab-node-1', zoneIndex: 0 }),
      ...(processImages ? { processImages } : {}),
    });
    k.start();
    stops.push(() => k.stop());
    let faults: LbcWithFaults;
    if (realLbc && !webhook) {
      const clusterName = options.clusterName ?? 'lab';
      const lbcDir = join(cpDir, 'aws-load-balancer-controller');
      await mkdir(lbcDir, { recursive: true });
      const kubeconfigPath = join(lbcDir, 'kubeconfig');
      await writeKubeconfig(kubeconfigPath, cp.url, cp.token, cp.caPem);
      const real = await startRealLbc({
        binary: realLbc.binary,
        moduleDir: realLbc.moduleDir,
        kubeconfigPath,
        apiServerUrl: cp.url,
        dir: lbcDir,
        clusterName,
        region,
        vpcId: alb.vpcId,
        ec2Url: aws.ec2Url,
        elbv2Url: aws.elbv2Url,
        awsEnv: aws.env,
        caPem: cp.caPem,
        serverCert: webhookCert,
        apply: (o) => applyClusterObject(cluster, o),
        log,
        timeScale: timings.timeScale,
      });
      faults = await lbcWithFaults({
        clock,
        account: aws.account,
        kubelet: k,
        webhookEnabled: true,
        realLbc: true,
        ...(options.faults ? { faults: options.faults } : {}),
        newLbc: () => ({ webhookEnabled: true, clusterName, setWebhookEnabled: () => undefined, stop: () => real.stop() }),
      });
    } else {
      const url = (webhook as { url: string }).url;
      faults = await lbcWithFaults({
        clock,
        account: aws.account,
        kubelet: k,
        webhookEnabled: options.webhookEnabled ?? true,
        ...(options.faults ? { faults: options.faults } : {}),
        newLbc: (webhookEnabled) =>
          startLbc({
            store: cluster,
            clock,
            alb,
            region,
            account: aws.account,
            webhookConfiguration: urlWebhookConfiguration(url, cp.caPem),
            webhookEnabled,
            ...(options.clusterName ? { clusterName: options.clusterName } : {}),
          }),
      });
    }
    stops.push(() => faults.stop());
    // Up means usable: the Node registered and the webhook configuration visible (pods get their gates).
    await waitForCache('the Node and the webhook configuration', 20_000, () => cluster.get('Node', '', k.nodeName) !== undefined && cluster.list('MutatingWebhookConfiguration').items.length > 0);
    await waitForCache('the default ServiceAccount', 20_000, async () => (await cluster.request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200);
    let argo: { pid: number; logPath: string } | undefined;
    if (options.argoRollouts) {
      const kubeconfigPath = join(cpDir, 'argo-rollouts.kubeconfig');
      await writeKubeconfig(kubeconfigPath, cp.url, cp.token, cp.caPem);
      const started = await startArgoRollouts({ ...options.argoRollouts, kubeconfigPath, dir: cpDir, apply: (crd) => installCrd(cluster, crd), log });
      stops.push(() => started.stop());
      argo = started;
    }
    const pids = (): Record<string, number> => ({ ...cp.pids(), ...(argo ? { 'argo-rollouts': argo.pid } : {}) });
    return await finishLab({
      options,
      timings,
      clock,
      region,
      store: cluster,
      alb,
      aws,
      kubelet: k,
      faults,
      seed,
      apiServerUrl: cp.url,
      writeKubeconfig: (path) => writeKubeconfig(path, cp.url, cp.token, cp.caPem),
      controlPlane: () => ({ tier: 'real', lbc: realLbc ? 'real' : 'emulated', pids: pids() }),
      tier: { controlPlane: 'real', real: { pids, dir: cpDir, ...(argo ? { argoRolloutsLog: argo.logPath } : {}) } },
      stop: stopAll,
    });
  } catch (err) {
    await stopAll();
    throw new ControlPlaneStartError((err as Error).message, cpDir);
  }
}

/** A projected service-account token for a pod, from the TokenRequest API (what kubelet asks for). */
async function requestToken(cluster: RealCluster, r: TokenRequest): Promise<string> {
  const answer = await cluster.request('POST', `/api/v1/namespaces/${r.namespace}/serviceaccounts/${r.serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    metadata: { name: r.serviceAccount, namespace: r.namespace },
    spec: {
      ...(r.audience ? { audiences: [r.audience] } : {}),
      expirationSeconds: r.expirationSeconds,
      boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: r.podName, uid: r.podUid },
    },
  } as unknown as KubeObject);
  if (answer.status !== 201 && answer.status !== 200) {
    throw new Error(`TokenRequest for ServiceAccount ${r.namespace}/${r.serviceAccount} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  }
  return (JSON.parse(answer.body) as { status: { token: string } }).status.token;
}

/** The profile's timings with the overrides, and the clock holding the lab's one seeded PRNG (both tiers). */
function labClock(options: LabOptions): { timings: LabTimings; seed: number; clock: LabClock } {
  const timings = timingsFor(options.profile ?? options.timings?.profile ?? 'fast', options.timings);
  const seed = options.seed ?? 1;
  return { timings, seed, clock: new LabClock(timings, new LabRandom(seed)) };
}

/** The LBC as a part that faults can stop, start and restart, and the injector driving it (both tiers). */
interface LbcWithFaults {
  readonly injector: FaultInjector;
  lbc(): Lbc;
  /** Stops the current LBC unless a fault already did. */
  stop(): Promise<void>;
}

async function lbcWithFaults(o: {
  clock: LabClock;
  account: AwsApis['account'];
  /** The embedded API server (kube-5xx, watch-drop); absent on the real tier. */
  api?: LabApiServer;
  webhookEnabled: boolean;
  /** The real controller: webhook and lbc faults are refused (nothing applied). */
  realLbc?: boolean;
  faults?: FaultChange;
  kubelet: Kubelet;
  newLbc: (webhookEnabled: boolean) => Lbc;
}): Promise<LbcWithFaults> {
  let webhookEnabled = o.webhookEnabled;
  let lbc = o.newLbc(webhookEnabled);
  let running = true;
  const injector = new FaultInjector({
    clock: o.clock,
    account: o.account,
    ...(o.api ? { api: o.api } : {}),
    ...(o.realLbc ? { realLbc: true } : {}),
    setWebhookEnabled: (v) => {
      webhookEnabled = v;
      lbc.setWebhookEnabled(v);
    },
    stopLbc: async () => {
      running = false;
      await lbc.stop();
    },
    startLbc: () => {
      lbc = o.newLbc(webhookEnabled);
      running = true;
    },
    loseNode: (count) => o.kubelet.loseNode(count, o.clock.stream('faults/node-loss')),
  });
  if (!webhookEnabled) await injector.apply({ set: { webhook: 'down' } });
  if (o.faults) await injector.apply(o.faults);
  return {
    injector,
    lbc: () => lbc,
    stop: async () => {
      if (running) await lbc.stop();
    },
  };
}

/** Creates a cluster-scoped object the real controller needs (CRDs wait until Established; an existing one is kept). */
async function applyClusterObject(cluster: RealCluster, o: KubeObject): Promise<void> {
  if (o.kind === 'CustomResourceDefinition') return installCrd(cluster, o);
  const plural: Record<string, string> = {
    IngressClassParams: 'ingressclassparams',
    IngressClass: 'ingressclasses',
    MutatingWebhookConfiguration: 'mutatingwebhookconfigurations',
    ValidatingWebhookConfiguration: 'validatingwebhookconfigurations',
  };
  const p = plural[o.kind];
  if (!p) throw new Error(`applyClusterObject: no path for kind ${o.kind} (a lab bug)`);
  const r = await cluster.request('POST', `/apis/${o.apiVersion}/${p}`, o);
  if (r.status !== 201 && r.status !== 409) throw new Error(`creating ${o.kind} ${o.metadata.name} answered ${r.status}: ${r.body.slice(0, 400)}`);
}

async function waitForCache(what: string, timeoutMs: number, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the real control plane did not show ${what} within ${timeoutMs / 1000}s`);
}

function shellQuote(v: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}
