import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AlbCloud } from './alb/index.js';
import { LabApiServer, writeKubeconfig, type ApiFaults } from './apiserver/index.js';
import { startAwsApis, type AwsApis, type AwsFaults } from './aws/index.js';
import { startControllers } from './controllers/index.js';
import { Kubelet } from './kubelet/index.js';
import { FaultControlServer, FaultInjector, formatFaults, type FaultChange, type LabFaults } from './faults.js';
import { startLbc, type Lbc } from './lbc/index.js';
import { LabNetwork } from './network.js';
import { ObjectStore } from './store.js';
import { LabRandom } from './random.js';
import { LabClock, timingsFor, type LabTimings, type TimingProfile } from './timing.js';
import type { JsonObject } from '../manifests/types.js';

/**
 * The embedded lab: a simulated EKS cluster (API server, controllers, kubelet), the AWS Load Balancer Controller,
 * an ALB with a real HTTP data plane, and the ELBv2/CloudWatch APIs — all on loopback, in this process.
 */

export interface LabOptions {
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
  log?: (line: string) => void;
}

export interface AlbInfo {
  ingress: string;
  hostname: string;
  url: string;
  responses: Record<string, number>;
}

export interface Lab {
  readonly store: ObjectStore;
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
  readonly api: LabApiServer;
  readonly aws: AwsApis;
  readonly apiServerUrl: string;
  readonly region: string;
  /** Set when a state dir was given. */
  readonly kubeconfigPath?: string;
  /** AWS SDK environment (region, dummy credentials, AWS_ENDPOINT_URL_*). */
  awsEnv(): Record<string, string>;
  /** Every Ingress with an ALB: its hostname, the local URL to send requests to, and responses so far. */
  albs(): AlbInfo[];
  /** Rewrites lab.json (it is also refreshed every few seconds while the lab runs with a state dir). */
  writeState(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const timings: LabTimings = timingsFor(options.profile ?? options.timings?.profile ?? 'fast', options.timings);
  const seed = options.seed ?? 1;
  const clock = new LabClock(timings, new LabRandom(seed));
  const region = options.region ?? 'us-east-1';
  const store = new ObjectStore();
  const log = options.log ?? (() => undefined);
  const api = new LabApiServer({
    store,
    random: clock.stream('apiserver/faults').fn(),
    ...(options.token ? { token: options.token } : {}),
    ...(options.apiFaults ? { faults: options.apiFaults } : {}),
  });
  const { url: apiServerUrl } = await api.start();
  // One pod network: the kubelet maps pod IPs to its listeners, the ALB connects through it.
  const network = new LabNetwork();
  const alb = new AlbCloud({ clock, region, network });
  const aws = await startAwsApis({ alb, clock, ...(options.awsFaults ? { faults: options.awsFaults } : {}) });
  const controllers = startControllers(store, clock, { log });
  const kubelet = new Kubelet(store, clock, { log, network });
  kubelet.start();
  let webhookEnabled = options.webhookEnabled ?? true;
  const newLbc = (): Lbc =>
    startLbc({
      store,
      clock,
      alb,
      region,
      account: aws.account,
      webhookEnabled,
      ...(options.clusterName ? { clusterName: options.clusterName } : {}),
    });
  let lbc = newLbc();
  let lbcRunning = true;
  const injector = new FaultInjector({
    clock,
    account: aws.account,
    api,
    setWebhookEnabled: (v) => {
      webhookEnabled = v;
      lbc.setWebhookEnabled(v);
    },
    stopLbc: async () => {
      lbcRunning = false;
      await lbc.stop();
    },
    startLbc: () => {
      lbc = newLbc();
      lbcRunning = true;
    },
  });
  if (options.webhookEnabled === false) await injector.apply({ set: { webhook: 'down' } });
  if (options.faults) await injector.apply(options.faults);
  const control = new FaultControlServer(injector);
  const controlUrl = await control.listen();

  const stateDir = options.stateDir;
  const kubeconfigPath = stateDir ? join(stateDir, 'kubeconfig') : undefined;

  const albs = (): AlbInfo[] => {
    const out: AlbInfo[] = [];
    for (const ing of store.list('Ingress').items) {
      const lbIngress = (((ing.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress ?? []) as JsonObject[];
      const hostname = lbIngress[0]?.hostname;
      if (typeof hostname !== 'string') continue;
      const url = alb.dataPlaneUrlForHostname(hostname);
      if (!url) continue;
      const lb = alb.loadBalancerArnForHostname(hostname);
      const counters = lb ? alb.stats(lb) : undefined;
      out.push({ ingress: `${ing.metadata.namespace}/${ing.metadata.name}`, hostname, url, responses: counters ? { ...counters.byStatus } : {} });
    }
    return out;
  };

  const awsEnv = (): Record<string, string> => ({ ...aws.env });

  const writeState = async (): Promise<void> => {
    if (!stateDir) return;
    const state = {
      apiServer: apiServerUrl,
      kubeconfig: kubeconfigPath,
      aws: { region, elbv2: aws.elbv2Url, cloudwatch: aws.cloudwatchUrl },
      timeScale: timings.timeScale,
      timings: timings.profile ?? 'fast',
      seed,
      /** With timeScale: what `deploy/analyze --time-origin` need to read the lab's CloudWatch clock. */
      timeOrigin: alb.epoch.originMs,
      /** `alb-rollout lab fault --lab DIR SPEC` posts SPEC here. */
      control: controlUrl,
      faults: formatFaults(injector.faults),
      albs: albs(),
      pid: process.pid,
    };
    const tmp = join(stateDir, `.lab.json.${process.pid}`);
    await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
    await rename(tmp, join(stateDir, 'lab.json'));
  };

  let refresher: NodeJS.Timeout | undefined;
  if (stateDir && kubeconfigPath) {
    await mkdir(stateDir, { recursive: true });
    await writeKubeconfig(kubeconfigPath, apiServerUrl, options.token);
    const env = Object.entries(aws.env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('\n');
    await writeFile(join(stateDir, 'aws.env'), `# source this file: . ${join(stateDir, 'aws.env')}\n${env}\nexport KUBECONFIG=${shellQuote(kubeconfigPath)}\n`);
    await writeState();
    refresher = setInterval(() => void writeState().catch(() => undefined), 2000);
    refresher.unref();
  }

  let stopped = false;
  return {
    store,
    clock,
    alb,
    kubelet,
    get lbc() {
      return lbc;
    },
    get faults() {
      return injector.faults;
    },
    setFaults: async (change) => {
      const f = await injector.apply(change);
      await writeState().catch(() => undefined);
      return f;
    },
    controlUrl,
    api,
    aws,
    apiServerUrl,
    region,
    ...(kubeconfigPath ? { kubeconfigPath } : {}),
    awsEnv,
    albs,
    writeState,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (refresher) clearInterval(refresher);
      await control.close();
      if (lbcRunning) await lbc.stop();
      await controllers.stop();
      await kubelet.stop();
      await Promise.all([alb.stop(), aws.stop(), api.stop()]);
    },
  };
}

function shellQuote(v: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}
