/** Shared setup for the lab API server tests: a server over a fresh store, a kubeconfig, and a kubectl runner. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabApiServer, writeKubeconfig, type ApiServerOptions } from '../../src/lab/apiserver/index.js';
import { ObjectStore } from '../../src/lab/store.js';

export const KUBECTL = {
  /** `kubectl` on PATH is the gcloud dispatcher: it runs the build matching the server's version (1.30). */
  default: 'kubectl',
  '1.30': '/usr/lib/google-cloud-sdk/bin/kubectl.1.30',
  '1.32': '/usr/lib/google-cloud-sdk/bin/kubectl.1.32',
  '1.33': '/usr/lib/google-cloud-sdk/bin/kubectl.1.33',
} as const;

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Lab {
  store: ObjectStore;
  server: LabApiServer;
  url: string;
  dir: string;
  kubeconfig: string;
  kubectl(args: string[], opts?: { bin?: string; timeoutMs?: number; input?: string }): Promise<KubectlResult>;
  /** Writes a manifest into the lab's temp dir and returns its path. */
  file(name: string, text: string): Promise<string>;
  api(method: string, path: string, opts?: { body?: unknown; contentType?: string; accept?: string }): Promise<{ status: number; body: any; text: string }>;
  close(): Promise<void>;
}

export async function startLab(options: Partial<ApiServerOptions> & { storeOptions?: ConstructorParameters<typeof ObjectStore>[0] } = {}): Promise<Lab> {
  const store = options.store ?? new ObjectStore(options.storeOptions);
  const server = new LabApiServer({ ...options, store });
  const { url } = await server.start();
  const dir = await mkdtemp(join(tmpdir(), 'lab-apiserver-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await writeKubeconfig(kubeconfig, url, options.token);
  const cacheDir = join(dir, 'cache');
  return {
    store,
    server,
    url,
    dir,
    kubeconfig,
    kubectl(args, opts = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          opts.bin ?? KUBECTL['1.32'],
          [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cacheDir}`, ...args],
          { timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, KUBECONFIG: kubeconfig, HOME: dir } },
          (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
          },
        );
        if (opts.input !== undefined) child.stdin?.end(opts.input);
      });
    },
    async file(name, text) {
      const p = join(dir, name);
      await writeFile(p, text);
      return p;
    },
    async api(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      if (opts.accept) headers.accept = opts.accept;
      let body: string | undefined;
      if (opts.body !== undefined) {
        body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
        headers['content-type'] = opts.contentType ?? 'application/json';
      }
      const res = await fetch(`${url}${path}`, { method, headers, body });
      const text = await res.text();
      let parsed: any;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, text };
    },
    async close() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function must(r: KubectlResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what}: kubectl exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}
