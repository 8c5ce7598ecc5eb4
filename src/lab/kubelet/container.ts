/**
 * One lab container: a real HTTP server per `containerPort` (on 127.0.0.1 with an ephemeral port, reached
 * through the pod's virtual IP by the lab network), its readiness probe, crash/restart with CrashLoopBackOff,
 * and what it does on SIGTERM and SIGKILL (see behavior.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Obj } from '../controllers/util.js';
import { arrAt, fnv32a, isoSeconds, numAt, objAt, strAt } from '../controllers/util.js';
import { type LabNetwork, POD_LISTEN_HOST, connectToPod } from '../network.js';
import { responsiveTimeout } from '../../runnable-timeout.js';
import type { LabClock } from '../timing.js';
import { LabRandom } from '../random.js';
import { type Behavior, containerBehavior, hasPreStop, imageVersion, preStopSeconds, seededRandom } from './behavior.js';

/** Real-time floor for probe timeouts, so that a busy event loop does not fail probes of a healthy server. */
const MIN_PROBE_TIMEOUT_MS = 250;
/** Simulated seconds a `crash` container runs before it exits. */
const CRASH_AFTER_SECONDS = 1;

export interface ProbeSpec {
  kind: 'http' | 'tcp' | 'pass';
  path: string;
  port?: number;
  host?: string;
  headers: Record<string, string>;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface ContainerContext {
  /** The pod's (virtual) IP. */
  ip: string;
  network: LabNetwork;
  namespace: string;
  podName: string;
  podUid: string;
  clock: LabClock;
  /** Something in the container status changed (kubelet writes pod status). */
  onChange(): void;
  /** The process is gone for good (after SIGTERM/SIGKILL). */
  onExit(): void;
  /** A timeline event. */
  emit(type: 'listening', container: string): void;
  /** The container exited on its own and will be restarted after `backoffSeconds` (kubelet's BackOff event). */
  onCrash(container: string, backoffSeconds: number): void;
  log(msg: string): void;
  /** The pod's spec.restartPolicy (default Always): Never/OnFailure containers run to completion. */
  restartPolicy?: RestartPolicy;
  /** Set for a container whose image runs as a real process (see process.ts): how to start it. */
  process?: () => Promise<ProcessSpec>;
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

/** A container that is a child process of the lab: what to run, with which environment, logs to `logPath`. */
export interface ProcessSpec {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  logPath: string;
}

/** A container that cannot start (e.g. a command the lab's image does not have): waiting with this reason. */
export class ContainerStartError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly reason: string,
  ) {
    super(message);
  }
}

type State =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: number }
  | { kind: 'terminated'; exitCode: number; reason: string; message?: string; startedAt: number; finishedAt: number };

function portNumber(container: Obj, port: unknown): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port === 'string') {
    if (/^\d+$/.test(port)) return Number(port);
    const named = arrAt(container, 'ports').find((p) => strAt(p, 'name') === port);
    return named ? numAt(named, 'containerPort') : undefined;
  }
  return undefined;
}

export function parseProbe(container: Obj): ProbeSpec | undefined {
  const probe = objAt(container, 'readinessProbe');
  if (!probe) return undefined;
  const common = {
    initialDelaySeconds: numAt(probe, 'initialDelaySeconds') ?? 0,
    periodSeconds: Math.max(numAt(probe, 'periodSeconds') ?? 10, 0.001),
    timeoutSeconds: numAt(probe, 'timeoutSeconds') ?? 1,
    successThreshold: Math.max(1, numAt(probe, 'successThreshold') ?? 1),
    failureThreshold: Math.max(1, numAt(probe, 'failureThreshold') ?? 3),
  };
  const http = objAt(probe, 'httpGet');
  if (http) {
    const headers: Record<string, string> = {};
    for (const h of arrAt(http, 'httpHeaders')) {
      const name = strAt(h, 'name');
      if (name) headers[name] = strAt(h, 'value') ?? '';
    }
    const spec: ProbeSpec = { kind: 'http', path: strAt(http, 'path') ?? '/', headers, ...common };
    const port = portNumber(container, http.port);
    if (port !== undefined) spec.port = port;
    const host = strAt(http, 'host');
    if (host) spec.host = host;
    return spec;
  }
  const tcp = objAt(probe, 'tcpSocket');
  if (tcp) {
    const spec: ProbeSpec = { kind: 'tcp', path: '', headers: {}, ...common };
    const port = portNumber(container, tcp.port);
    if (port !== undefined) spec.port = port;
    const host = strAt(tcp, 'host');
    if (host) spec.host = host;
    return spec;
  }
  return { kind: 'pass', path: '', headers: {}, ...common };
}

export class ContainerRunner {
  readonly name: string;
  readonly image: string;
  readonly ports: number[];
  readonly behavior: Behavior;
  readonly probe: ProbeSpec | undefined;
  readonly preStopSeconds: number;
  readonly hasPreStop: boolean;
  private readonly version: string;
  private state: State = { kind: 'waiting', reason: 'ContainerCreating' };
  private lastState: State | undefined;
  private restartCount = 0;
  private containerId = '';
  /** Open listeners: the container port, the real port on POD_LISTEN_HOST once listening. */
  private readonly servers: Array<{ server: Server; port: number; realPort?: number }> = [];
  private readonly sockets = new Set<Socket>();
  private listening = false;
  private listeningSince = 0;
  private probeReady = false;
  private successes = 0;
  private failures = 0;
  private probing = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private generation = 0;
  private child: ChildProcess | undefined;
  private stopping = false;
  private gone = false;
  private readonly random: () => number;
  private readonly latencyRandom: LabRandom;

  constructor(
    spec: Obj,
    private readonly ctx: ContainerContext,
  ) {
    this.name = strAt(spec, 'name') ?? 'container';
    this.image = strAt(spec, 'image') ?? '';
    this.version = imageVersion(this.image);
    this.ports = [
      ...new Set(
        arrAt(spec, 'ports')
          .filter((p) => (strAt(p, 'protocol') ?? 'TCP') === 'TCP')
          .map((p) => numAt(p, 'containerPort'))
          .filter((p): p is number => p !== undefined),
      ),
    ];
    this.behavior = containerBehavior(spec);
    if (this.behavior.unknown.length) {
      ctx.log(`pod ${ctx.namespace}/${ctx.podName} container ${this.name}: ignoring unknown LAB_BEHAVIOR part(s) ${this.behavior.unknown.join(', ')}`);
    }
    this.probe = parseProbe(spec);
    this.preStopSeconds = preStopSeconds(spec);
    this.hasPreStop = hasPreStop(spec);
    this.random = seededRandom(fnv32a(`${ctx.namespace}/${ctx.podName}/${this.name}`));
    this.latencyRandom = new LabRandom(fnv32a(`${ctx.namespace}/${ctx.podName}/${this.name}`), 'latency');
  }

  get ready(): boolean {
    if (this.state.kind !== 'running') return false;
    if (this.ctx.process && !this.probe) return true;
    if (this.probe) return this.probeReady;
    return this.ports.length > 0 ? this.listening : !this.behavior.crash;
  }

  get exited(): boolean {
    return this.gone;
  }

  get isListening(): boolean {
    return this.listening;
  }

  /** Starts (or restarts) the process. */
  start(): void {
    if (this.stopping || this.gone) return;
    const gen = ++this.generation;
    // Derived from the (seeded) pod uid: the same seed gives the same container IDs.
    this.containerId = `containerd://${createHash('sha256').update(`${this.ctx.podUid}/${this.name}/${gen}`).digest('hex')}`;
    this.state = { kind: 'running', startedAt: Date.now() };
    this.successes = 0;
    this.failures = 0;
    this.probeReady = false;
    this.ctx.onChange();
    if (this.ctx.process) {
      this.runProcess(gen, this.ctx.process);
    } else if (this.behavior.crash) {
      this.after(CRASH_AFTER_SECONDS, () => gen === this.generation && this.crash(1, 'Error', 'LAB_BEHAVIOR=crash'));
    } else if (this.ports.length > 0) {
      this.after(this.behavior.slowStartSeconds, () => gen === this.generation && this.listen(gen));
    }
    if (this.probe) this.after(this.probe.initialDelaySeconds, () => this.probeLoop(gen));
  }

  /** The container as a child process: its exit code is the container's. */
  private runProcess(gen: number, prepare: () => Promise<ProcessSpec>): void {
    void prepare().then(
      (spec) => {
        if (gen !== this.generation || this.state.kind !== 'running') return;
        const log = createWriteStream(spec.logPath, { flags: 'a' });
        const child = spawn(spec.file, spec.args, { env: spec.env, cwd: spec.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
        this.child = child;
        let tail = '';
        const keep = (chunk: Buffer): void => {
          tail = (tail + chunk.toString('utf8')).slice(-2000);
        };
        child.stdout?.on('data', keep);
        child.stderr?.on('data', keep);
        child.stdout?.pipe(log, { end: false });
        child.stderr?.pipe(log, { end: false });
        child.once('error', (err) => {
          if (this.child === child) this.child = undefined;
          log.end();
          if (gen === this.generation) this.crash(128, 'StartError', `failed to start ${spec.file}: ${err.message}`);
        });
        child.once('exit', (code, signal) => {
          if (this.child === child) this.child = undefined;
          log.end();
          const exitCode = code ?? (signal === 'SIGKILL' ? 137 : 143);
          const last = tail.trim().split('\n').slice(-3).join(' | ');
          this.ctx.log(`pod ${this.ctx.namespace}/${this.ctx.podName} container ${this.name}: process exited with code ${exitCode} (log ${spec.logPath}): ${last}`);
          if (gen !== this.generation) return;
          if (this.stopping) this.exit(exitCode, exitCode === 0 ? 'Completed' : 'Error');
          else this.crash(exitCode, exitCode === 0 ? 'Completed' : 'Error', last);
        });
      },
      (err: Error) => {
        if (gen !== this.generation) return;
        const e = err instanceof ContainerStartError ? err : new ContainerStartError(err.message, 128, 'StartError');
        this.ctx.log(`pod ${this.ctx.namespace}/${this.ctx.podName} container ${this.name}: cannot start: ${e.message}`);
        this.crash(e.exitCode, e.reason, e.message);
      },
    );
  }

  private after(seconds: number, fn: () => void): void {
    const t = this.ctx.clock.after(seconds, () => {
      this.timers.delete(t);
      fn();
    });
    this.timers.add(t);
  }

  private listen(gen: number): void {
    let pending = this.ports.length;
    for (const port of this.ports) {
      const server = createServer((req, res) => this.handle(req, res));
      // The keep-alive timeout runs on the lab's clock (Node's own adds a real-time second of slack), see keepIdle.
      server.keepAliveTimeout = 0;
      server.on('connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        this.keepIdle(socket);
      });
      const entry: { server: Server; port: number; realPort?: number } = { server, port };
      const failed = (err: NodeJS.ErrnoException): void => {
        if (gen !== this.generation || this.state.kind !== 'running') return;
        const hint =
          err.code === 'EADDRINUSE'
            ? ` (another container of this pod already listens on port ${port})`
            : err.code === 'EMFILE' || err.code === 'ENFILE'
              ? ' (the lab process is out of file descriptors: raise ulimit -n or run fewer pods)'
              : '';
        this.ctx.log(`pod ${this.ctx.namespace}/${this.ctx.podName} container ${this.name}: cannot listen on port ${port}: ${err.message}${hint}`);
        this.crash(1, 'Error', `listen tcp :${port}: ${err.message}${hint}`);
      };
      server.once('error', failed);
      // Pods never keep the process alive on their own: whoever runs the lab holds it open.
      server.unref();
      server.listen({ port: 0, host: POD_LISTEN_HOST, exclusive: true }, () => {
        if (gen !== this.generation || this.state.kind !== 'running') {
          server.close();
          return;
        }
        const realPort = (server.address() as AddressInfo).port;
        const refused = this.ctx.network.expose(this.ctx.ip, port, this.ctx.podUid, realPort);
        if (refused) {
          failed(refused);
          return;
        }
        entry.realPort = realPort;
        pending--;
        if (pending === 0) {
          this.listening = true;
          this.listeningSince = Date.now();
          this.ctx.emit('listening', this.name);
          this.ctx.onChange();
        }
      });
      this.servers.push(entry);
    }
  }

  /** Stops accepting connections: the pod address refuses from now on; in-flight requests go on. */
  private stopListening(): void {
    for (const s of this.servers.splice(0)) {
      if (s.realPort !== undefined) this.ctx.network.unexpose(this.ctx.ip, s.port, s.realPort);
      s.server.close();
    }
  }

  /** Closes `socket` once it has had no request for the keep-alive timeout (LAB_BEHAVIOR keepalive-timeout). */
  private keepIdle(socket: Socket): void {
    let active = 0;
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(idle);
      idle = this.ctx.clock.after(this.behavior.keepAliveTimeoutSeconds, () => {
        if (active === 0) socket.destroy();
      });
    };
    socket.on('close', () => clearTimeout(idle));
    this.idleHooks.set(socket, {
      begin: () => {
        active++;
        clearTimeout(idle);
      },
      end: () => {
        if (--active === 0) arm();
      },
    });
    arm();
  }

  private readonly idleHooks = new WeakMap<Socket, { begin(): void; end(): void }>();

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const hooks = this.idleHooks.get(req.socket);
    hooks?.begin();
    res.once('close', () => hooks?.end());
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const latency = this.behavior.latency;
    const checker = /^(kube-probe|ELB-HealthChecker)\//.test(req.headers['user-agent'] ?? '');
    if (latency && path !== '/healthz' && !checker && latency.p99 > 0) {
      const seconds = Math.min(latency.p99 * 10, this.latencyRandom.delay(latency));
      // A long request: answered later, or cut when the process goes away first (timers are cleared on exit).
      this.after(seconds, () => this.respond(req, res, path));
      return;
    }
    this.respond(req, res, path);
  }

  private respond(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (res.destroyed || res.writableEnded) return;
    let fail = false;
    if (path !== '/healthz') {
      const b = this.behavior;
      if (b.error500) fail = true;
      if (b.error500AfterSeconds !== undefined && this.ctx.clock.simulatedSeconds(Date.now() - this.listeningSince) >= b.error500AfterSeconds) fail = true;
      if (b.errorRate > 0 && this.random() < b.errorRate) fail = true;
    }
    const line = `image=${this.image} pod=${this.ctx.podName} version=${this.version}`;
    const wantsHtml = (req.headers.accept ?? '').includes('text/html');
    const text = fail ? `error: simulated failure (LAB_BEHAVIOR=${this.behavior.raw}) ${line}\n` : `${line}\n`;
    const body = wantsHtml ? `<!doctype html><html><body><pre>${text.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`)}</pre></body></html>\n` : text;
    if (this.stopping) res.shouldKeepAlive = false;
    res.writeHead(fail ? 500 : 200, {
      'content-type': wantsHtml ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-lab-pod': this.ctx.podName,
      'x-lab-image': this.image,
      'x-lab-version': this.version,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  // -------------------------------------------------------------------------------------------
  // readiness probe

  private probeLoop(gen: number): void {
    if (gen !== this.generation || this.gone || this.state.kind !== 'running' || !this.probe) return;
    const probe = this.probe;
    this.after(probe.periodSeconds, () => this.probeLoop(gen));
    if (this.probing) return;
    this.probing = true;
    void this.runProbe(probe).then((ok) => {
      this.probing = false;
      if (gen !== this.generation || this.gone || this.state.kind !== 'running') return;
      const before = this.probeReady;
      if (ok) {
        this.failures = 0;
        this.successes++;
        if (this.successes >= probe.successThreshold) this.probeReady = true;
      } else {
        this.successes = 0;
        this.failures++;
        if (this.failures >= probe.failureThreshold) this.probeReady = false;
      }
      if (before !== this.probeReady) this.ctx.onChange();
    });
  }

  private runProbe(probe: ProbeSpec): Promise<boolean> {
    if (probe.kind === 'pass') return Promise.resolve(true);
    const port = probe.port ?? this.ports[0];
    if (port === undefined) return Promise.resolve(false);
    // The probe's `host` (rare) is routed like any pod address: only pods of this lab are reachable.
    const host = probe.host ?? this.ctx.ip;
    const timeout = Math.max(MIN_PROBE_TIMEOUT_MS, this.ctx.clock.ms(probe.timeoutSeconds));
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const done = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        cancelTimeout();
        resolve(ok);
      };
      let handle: { destroy(): void } | undefined;
      const cancelTimeout = responsiveTimeout(timeout, () => {
        done(false);
        handle?.destroy();
      });
      const conn = connectToPod(this.ctx.network, host, port);
      if (conn.kind === 'refused') {
        done(false);
        return;
      }
      if (conn.kind === 'blackhole') return; // nothing answers: the probe times out
      const socket = conn.socket;
      if (probe.kind === 'tcp') {
        socket.once('connect', () => {
          done(true);
          socket.destroy();
        });
        socket.on('error', () => done(false));
        handle = socket;
      } else {
        const req = request(
          { host, port, path: probe.path, method: 'GET', createConnection: () => socket, headers: { 'user-agent': 'kube-probe/1.33', ...probe.headers } },
          (res) => {
            const code = res.statusCode ?? 0;
            res.resume();
            done(code >= 200 && code < 400);
          },
        );
        req.on('error', () => done(false));
        req.end();
        handle = req;
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // exits

  private closeServers(): void {
    this.stopListening();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.listening = false;
  }

  /** The process exits on its own (crash): restart with back-off unless the pod is stopping. */
  private crash(exitCode: number, reason: string, message: string): void {
    const startedAt = this.state.kind === 'running' ? this.state.startedAt : Date.now();
    this.generation++;
    this.closeServers();
    this.lastState = { kind: 'terminated', exitCode, reason, message, startedAt, finishedAt: Date.now() };
    if (this.stopping) {
      this.exit(exitCode, reason);
      return;
    }
    const policy = this.ctx.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && exitCode === 0)) {
      // Runs to completion: terminated for good (this is no previous instance: lastState stays empty).
      this.lastState = undefined;
      this.exit(exitCode, reason, message, startedAt);
      return;
    }
    this.restartCount++;
    const backoff = Math.min(300, 10 * 2 ** (this.restartCount - 1));
    this.ctx.onCrash(this.name, backoff);
    this.state = {
      kind: 'waiting',
      reason: 'CrashLoopBackOff',
      message: `back-off ${backoff}s restarting failed container=${this.name} pod=${this.ctx.podName}_${this.ctx.namespace}(${this.ctx.podUid})`,
    };
    this.ctx.onChange();
    this.after(backoff, () => this.start());
  }

  /** SIGTERM: what the app does depends on LAB_BEHAVIOR. */
  sigterm(): void {
    if (this.gone || this.stopping) return;
    this.stopping = true;
    if (this.state.kind !== 'running') {
      this.exit(0, 'Completed');
      return;
    }
    if (this.child) {
      this.child.kill('SIGTERM'); // its exit is the container's
      return;
    }
    const slow = this.behavior.slowShutdownSeconds;
    if (slow === undefined || slow <= 0) {
      this.exit(0, 'Completed');
      return;
    }
    // Graceful: no new connections, in-flight requests finish, exit after `slow` seconds.
    this.stopListening();
    this.after(slow, () => this.exit(0, 'Completed'));
  }

  /** SIGKILL. */
  kill(): void {
    if (this.gone) return;
    this.stopping = true;
    this.child?.kill('SIGKILL');
    this.child = undefined;
    this.exit(137, 'Error');
  }

  /** The container's last exit code once it has terminated for good. */
  get exitCode(): number | undefined {
    return this.gone && this.state.kind === 'terminated' ? this.state.exitCode : undefined;
  }

  private exit(exitCode: number, reason: string, message?: string, startedAtArg?: number): void {
    if (this.gone) return;
    const startedAt = startedAtArg ?? (this.state.kind === 'running' ? this.state.startedAt : Date.now());
    this.generation++;
    this.gone = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.closeServers();
    this.probeReady = false;
    this.state = { kind: 'terminated', exitCode, reason, ...(message ? { message } : {}), startedAt, finishedAt: Date.now() };
    this.ctx.onExit();
  }

  /** Kubelet stop: everything goes at once, nothing is reported. */
  destroy(): Promise<void> {
    this.child?.kill('SIGKILL');
    this.child = undefined;
    this.gone = true;
    this.stopping = true;
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closing = this.servers.splice(0).map((s) => {
      if (s.realPort !== undefined) this.ctx.network.unexpose(this.ctx.ip, s.port, s.realPort);
      return new Promise<void>((r) => s.server.close(() => r()));
    });
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.listening = false;
    return Promise.all(closing).then(() => undefined);
  }

  /** core/v1 ContainerStatus. */
  status(): Obj {
    const imageID = `${this.image.split('@')[0]?.replace(/:[^/:]*$/, '')}@sha256:${createHash('sha256').update(this.image).digest('hex')}`;
    const out: Obj = {
      name: this.name,
      image: this.image,
      imageID,
      ready: this.ready,
      restartCount: this.restartCount,
      started: this.state.kind === 'running',
      state: stateJson(this.state),
    };
    if (this.containerId) out.containerID = this.containerId;
    if (this.lastState) out.lastState = stateJson(this.lastState);
    else out.lastState = {};
    return out;
  }
}

function stateJson(s: State): Obj {
  switch (s.kind) {
    case 'waiting':
      return { waiting: s.message ? { reason: s.reason, message: s.message } : { reason: s.reason } };
    case 'running':
      return { running: { startedAt: isoSeconds(s.startedAt) } };
    case 'terminated': {
      const t: Obj = { exitCode: s.exitCode, reason: s.reason, startedAt: isoSeconds(s.startedAt), finishedAt: isoSeconds(s.finishedAt) };
      if (s.message) t.message = s.message;
      return { terminated: t };
    }
  }
}
