/**
 * The real AWS Load Balancer Controller's webhook server listens on every interface: its
 * `pkg/config/runtime_config.go` gives controller-runtime's webhook options a port and no host, and no flag,
 * linker variable or importable main changes that. Every lab server binds 127.0.0.0/8, so the lab runs the
 * controller in a network namespace of its own (`unshare -rn`: a user namespace too, so it works unprivileged)
 * whose only interface is its own loopback: "every interface" there is that loopback, and the controller cannot
 * send a packet anywhere else.
 *
 * Traffic crosses the namespace boundary over Unix sockets in a directory both sides see (path-named Unix
 * sockets are file-system objects, not network-namespace ones):
 *
 *  - outbound (the API server, EC2, ELBv2): inside, a bridge listens on 127.0.0.1:<port> — the same port as
 *    outside, so the kubeconfig and the endpoint URLs stay as they are — and forwards each connection to
 *    `o<port>.sock`, where the lab forwards it to 127.0.0.1:<port> outside;
 *  - inbound (the webhook): outside, the lab listens on 127.0.0.1:<host port> and forwards to `i<port>.sock`,
 *    where the bridge forwards it to the controller's webhook port inside.
 *
 * TLS passes through unchanged (the API server and the webhook certificates name 127.0.0.1 on both sides).
 */
import { spawnSync } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A TCP port on 127.0.0.1 (of the namespace the process is in) or a Unix socket path. */
export type Endpoint = { port: number } | { path: string };

export interface NetnsBridgeSpec {
  /** The directory of the Unix sockets (short: a socket path has at most 107 bytes). */
  dir: string;
  /** Ports the controller dials on 127.0.0.1, reached outside through `o<port>.sock`. */
  outbound: number[];
  /** Ports the controller listens on inside, reached from outside through `i<port>.sock`. */
  inbound: number[];
  /** The controller: run inside the namespace once the bridge listens. */
  command: string;
  args: string[];
}

export const outboundSocket = (dir: string, port: number): string => join(dir, `o${port}.sock`);
export const inboundSocket = (dir: string, port: number): string => join(dir, `i${port}.sock`);
/** The bridge writes the controller's process id here (the lab's last resort when stopping). */
export const controllerPidFile = (dir: string): string => join(dir, 'controller.pid');

function dial(to: Endpoint): Socket {
  return 'port' in to ? createConnection({ host: '127.0.0.1', port: to.port }) : createConnection({ path: to.path });
}

/**
 * Listens on `from` and pipes every connection to a new connection to `to`; either side closing or failing
 * closes both. Resolves once listening; `close()` also ends the connections in flight.
 */
export function forward(from: Endpoint, to: Endpoint): Promise<{ server: Server; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = dial(to);
    open.add(inbound);
    open.add(outbound);
    const done = (): void => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
      open.delete(outbound);
    };
    inbound.on('error', done).on('close', done);
    outbound.on('error', done).on('close', done);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = (): void => {
      server.off('error', reject);
      resolve({
        server,
        close: () =>
          new Promise<void>((r) => {
            for (const s of open) s.destroy();
            server.close(() => r());
          }),
      });
    };
    if ('port' in from) server.listen(from.port, '127.0.0.1', ready);
    else server.listen(from.path, ready);
  });
}

/** The lab's side: Unix sockets to the real ports outside, and the inbound ports' loopback listeners. */
export async function hostForwards(spec: Pick<NetnsBridgeSpec, 'dir' | 'outbound'>, inbound: Array<{ hostPort: number; port: number }>): Promise<() => Promise<void>> {
  const closers: Array<() => Promise<void>> = [];
  try {
    for (const port of spec.outbound) closers.push((await forward({ path: outboundSocket(spec.dir, port) }, { port })).close);
    for (const i of inbound) closers.push((await forward({ port: i.hostPort }, { path: inboundSocket(spec.dir, i.port) })).close);
  } catch (err) {
    await Promise.all(closers.map((c) => c()));
    throw err;
  }
  return async () => {
    await Promise.all(closers.map((c) => c()));
  };
}

/** The namespace's side: loopback listeners to the outbound sockets, and the inbound sockets to the ports inside. */
export async function namespaceForwards(spec: NetnsBridgeSpec): Promise<() => Promise<void>> {
  const closers: Array<() => Promise<void>> = [];
  for (const port of spec.outbound) closers.push((await forward({ port }, { path: outboundSocket(spec.dir, port) })).close);
  for (const port of spec.inbound) closers.push((await forward({ path: inboundSocket(spec.dir, port) }, { port })).close);
  return async () => {
    await Promise.all(closers.map((c) => c()));
  };
}

/**
 * The command line that runs the bridge in a new user + network namespace: `unshare -rn` (root inside maps to
 * the caller outside), the namespace's loopback brought up (it starts down), then the bridge.
 */
export function unshareCommand(node: string, nodeArgs: string[], bridgeScript: string, spec: NetnsBridgeSpec): { command: string; args: string[] } {
  return {
    command: 'unshare',
    args: ['--user', '--map-root-user', '--net', '--', 'sh', '-c', 'PATH="$PATH:/usr/sbin:/sbin"; ip link set lo up && exec "$@"', 'sh', node, ...nodeArgs, bridgeScript, JSON.stringify(spec)],
  };
}

/** Parses the bridge's one argument; a malformed spec is a lab bug, named as such. */
export function parseBridgeSpec(text: string | undefined): NetnsBridgeSpec {
  const v = JSON.parse(text ?? 'null') as Partial<NetnsBridgeSpec> | null;
  const ports = (x: unknown): x is number[] => Array.isArray(x) && x.every((p) => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536);
  if (!v || typeof v.dir !== 'string' || !ports(v.outbound) || !ports(v.inbound) || typeof v.command !== 'string' || !Array.isArray(v.args) || !v.args.every((a) => typeof a === 'string')) {
    throw new Error(`netns bridge: malformed spec ${String(text).slice(0, 200)} (a lab bug)`);
  }
  return v as NetnsBridgeSpec;
}

/** A clear setup error when user + network namespaces cannot be made (the controller would listen on every interface). */
export class NetnsUnavailableError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'NetnsUnavailableError';
  }
}

/** `unshare -rn` works here (as this user), or why not. */
export function checkNetns(): void {
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--net', '--', 'sh', '-c', 'PATH="$PATH:/usr/sbin:/sbin"; ip link set lo up'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return;
  const why = r.error ? r.error.message : (r.stderr || `exit ${String(r.status)}`).trim();
  throw new NetnsUnavailableError(
    `the lab runs the real AWS Load Balancer Controller in a network namespace of its own (its webhook server listens on every interface), and \`unshare --user --map-root-user --net\` with \`ip link set lo up\` failed: ${why}`,
    'allow unprivileged user namespaces (sysctl user.max_user_namespaces=15000, and kernel.unprivileged_userns_clone=1 where it exists), and install util-linux (unshare) and iproute2 (ip)',
  );
}

/** The bridge program and how node runs it: from source through tsx, or the bundled file beside dist/cli.js. */
export function bridgeEntry(): { nodeArgs: string[]; script: string } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return { nodeArgs: ['--import', import.meta.resolve('tsx')], script: join(dirname(here), 'netns-bridge.ts') };
  return { nodeArgs: [], script: join(dirname(here), 'lab-netns-bridge.js') };
}

