/**
 * The real control plane's binary: built from the Go module in `lab/controlplane/` (kube-apiserver,
 * kube-controller-manager, kube-scheduler and etcd as subcommands of one program) into a cache directory keyed by
 * the Kubernetes version and a hash of the module's sources, so that a second build takes seconds.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The files whose content decides the binary (the cache key). */
const SOURCE_FILES = ['go.mod', 'go.sum', 'main.go'];
export const BINARY_NAME = 'controlplane';

export interface ControlPlaneSource {
  /** lab/controlplane/ */
  dir: string;
  /** The pinned Kubernetes release, e.g. v1.35.4. */
  kubernetesVersion: string;
  /** The etcd server version from go.mod, e.g. v3.6.5. */
  etcdVersion: string;
  /** sha256 of the source files, first 12 hex digits. */
  hash: string;
}

export interface CachedBinary {
  path: string;
  source: ControlPlaneSource;
}

/** A setup problem the user fixes (no Go, no module proxy, not built yet): exit code 2, no stack trace. */
export class ControlPlaneSetupError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'ControlPlaneSetupError';
  }
}

/** The real control plane or the lab's parts on it failed to start: a report, not a stack trace (exit 1). */
export class ControlPlaneStartError extends Error {
  constructor(
    message: string,
    readonly logsDir: string,
  ) {
    super(message);
    this.name = 'ControlPlaneStartError';
  }
}

/** lab/controlplane in the working directory, else the one shipped beside this code (src/ or dist/). */
export function findSourceDir(cwd: string): string {
  const local = join(cwd, 'lab', 'controlplane');
  if (existsSync(join(local, 'go.mod'))) return local;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'lab', 'controlplane');
    if (existsSync(join(candidate, 'go.mod'))) return candidate;
    dir = dirname(dir);
  }
  throw new ControlPlaneSetupError(`the real control plane's Go module (lab/controlplane/go.mod) was not found from ${cwd}`, 'run alb-rollout from a checkout of the repository');
}

export async function readSource(dir: string): Promise<ControlPlaneSource> {
  const hash = createHash('sha256');
  let goMod = '';
  for (const f of SOURCE_FILES) {
    const text = await readFile(join(dir, f), 'utf8');
    if (f === 'go.mod') goMod = text;
    hash.update(`${f}\0${text}\0`);
  }
  const version = (mod: string): string | undefined => new RegExp(`^\\s*${mod.replace(/\./g, '\\.')}\\s+(v\\S+)`, 'm').exec(goMod)?.[1];
  const kubernetesVersion = version('k8s.io/kubernetes');
  if (!kubernetesVersion) throw new ControlPlaneSetupError(`${join(dir, 'go.mod')} does not require k8s.io/kubernetes`, 'restore lab/controlplane/go.mod from git');
  return { dir, kubernetesVersion, etcdVersion: version('go.etcd.io/etcd/server/v3') ?? 'unknown', hash: hash.digest('hex').slice(0, 12) };
}

/** `${XDG_CACHE_HOME:-~/.cache}/alb-rollout/controlplane` */
export function cacheRoot(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.trim() !== '' ? env.XDG_CACHE_HOME : join(env.HOME ?? homedir(), '.cache');
  return join(base, 'alb-rollout', 'controlplane');
}

export function binaryPath(source: ControlPlaneSource, env: NodeJS.ProcessEnv): string {
  return join(cacheRoot(env), `${source.kubernetesVersion}-${source.hash}`, BINARY_NAME);
}

/** The cached binary for these sources, or undefined when it has not been built. */
export async function findCachedBinary(source: ControlPlaneSource, env: NodeJS.ProcessEnv): Promise<CachedBinary | undefined> {
  const path = binaryPath(source, env);
  try {
    const st = await stat(path);
    if (st.isFile() && (st.mode & 0o111) !== 0) return { path, source };
  } catch {
    // not built
  }
  return undefined;
}

/** The binary `lab up --control-plane real` runs; a clear setup error when `lab build` has not run. */
export async function requireBinary(cwd: string, env: NodeJS.ProcessEnv): Promise<CachedBinary> {
  const source = await readSource(findSourceDir(cwd));
  const found = await findCachedBinary(source, env);
  if (found) return found;
  throw new ControlPlaneSetupError(
    `the real control plane (Kubernetes ${source.kubernetesVersion}) is not built: ${binaryPath(source, env)} does not exist`,
    'run `npx alb-rollout lab build --control-plane real` first (needs Go and the Go module proxy; 15-30 min the first time, seconds after)',
  );
}

export interface BuildResult extends CachedBinary {
  cached: boolean;
  seconds: number;
}

export interface BuildOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Progress lines for the person waiting. */
  progress: (line: string) => void;
  now?: () => number;
}

/** The Go linker flags: the version the servers report (otherwise v0.0.0-master) and a smaller, cheaper link. */
export function ldflags(kubernetesVersion: string): string {
  const [major, minor] = kubernetesVersion.replace(/^v/, '').split('.');
  const pkg = 'k8s.io/component-base/version';
  return [
    '-s',
    '-w',
    `-X ${pkg}.gitVersion=${kubernetesVersion}`,
    `-X ${pkg}.gitMajor=${major ?? ''}`,
    `-X ${pkg}.gitMinor=${minor ?? ''}`,
    `-X ${pkg}.gitTreeState=clean`,
  ].join(' ');
}

export async function buildControlPlane(options: BuildOptions): Promise<BuildResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const source = await readSource(findSourceDir(options.cwd));
  const cached = await findCachedBinary(source, options.env);
  if (cached) return { ...cached, cached: true, seconds: (now() - started) / 1000 };

  const goVersion = await runGo(['version'], source.dir, options.env).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new ControlPlaneSetupError('Go is not installed: `go` is not on PATH', 'install Go 1.25 or newer (https://go.dev/doc/install; Debian: apt-get install golang), or use the embedded control plane (drop --control-plane real)');
    }
    throw err;
  });
  options.progress(`building the real control plane: Kubernetes ${source.kubernetesVersion}, etcd ${source.etcdVersion} (${goVersion.stdout.trim()})`);
  const goEnv = buildEnv(options.env);

  options.progress('1/3 downloading Go modules (about 1 GB the first time)…');
  const download = await runGo(['mod', 'download'], source.dir, goEnv);
  if (download.code !== 0) {
    throw new ControlPlaneSetupError(
      `Go could not download the modules (GOPROXY=${goEnv.GOPROXY ?? 'default'}): ${lastLines(download.stderr)}`,
      'check network access to the Go module proxy (GOPROXY), or fill the module cache on a machine that has it',
    );
  }
  const deps = await runGo(['list', '-deps', '.'], source.dir, goEnv);
  const total = deps.code === 0 ? deps.stdout.split('\n').filter((l) => l.trim() !== '').length : 0;

  const outDir = dirname(binaryPath(source, options.env));
  await mkdir(outDir, { recursive: true });
  const tmp = join(outDir, `.${BINARY_NAME}.${process.pid}.tmp`);
  options.progress(`2/3 compiling ${total > 0 ? `${total} packages` : 'packages'} (go build -p 2; 15-30 min cold on 2 cores, 3+ GB of memory at link)…`);
  let compiled = 0;
  let lastReport = now();
  const build = await runGo(['build', '-p', '2', '-v', '-trimpath', '-ldflags', ldflags(source.kubernetesVersion), '-o', tmp, '.'], source.dir, goEnv, (line) => {
    // `go build -v` names each package as it is compiled (only those not already in the build cache).
    if (line.trim() === '' || line.startsWith('#')) return;
    compiled++;
    if (now() - lastReport > 30_000) {
      lastReport = now();
      options.progress(`   …${compiled}${total > 0 ? ` of at most ${total}` : ''} packages compiled (${Math.round((now() - started) / 1000)}s)`);
    }
  });
  if (build.code !== 0) {
    await rm(tmp, { force: true });
    throw new ControlPlaneSetupError(`go build failed (exit ${build.code}): ${lastLines(build.stderr, 12)}`, 'read the compiler output above; a Go older than go.mod asks for needs GOTOOLCHAIN set to a newer release');
  }
  options.progress('3/3 installing into the cache');
  await chmod(tmp, 0o755);
  await rename(tmp, binaryPath(source, options.env));
  return { path: binaryPath(source, options.env), source, cached: false, seconds: (now() - started) / 1000 };
}

export function buildEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // No VCS stamping (the build runs inside a git checkout whose state must not change the binary). CGO_ENABLED is
  // left as Go decides (on when a C compiler is present): changing it invalidates the whole build cache.
  const flags = env.GOFLAGS ?? '';
  return { ...env, GOFLAGS: flags.includes('-buildvcs') ? flags : `${flags} -buildvcs=false`.trim() };
}

export function lastLines(text: string, n = 4): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

export function runGo(args: string[], cwd: string, env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      stderr = (stderr + s).slice(-64_000);
      if (!onLine) return;
      partial += s;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
