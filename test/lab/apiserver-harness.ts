import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { LabApiServer, writeKubeconfig, type ApiServerOptions } from '../../src/lab/apiserver/index.js';
import { ObjectStore } from '../../src/lab/store.js';

/** A lab API server alone (no controllers) with real kubectl, client-node and raw HTTP to talk to it. */

export const KUBECTL_BIN = '/usr/lib/google-cloud-sdk/bin';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Http {
  status: number;
  body: any;
  text: string;
}

export class ApiServerLab {
  readonly store: ObjectStore;
  /** Request log lines (`METHOD url → code …`), in order. */
  readonly requests: string[] = [];
  server!: LabApiServer;
  url = '';
  dir = '';
  kubeconfig = '';

  constructor(
    private readonly options: Partial<ApiServerOptions> & { eventLogSize?: number; kubectl?: string } = {},
  ) {
    this.store = new ObjectStore({ eventLogSize: options.eventLogSize });
  }

  async start(): Promise<this> {
    const { kubectl: _bin, eventLogSize: _size, ...serverOptions } = this.options;
    this.server = new LabApiServer({ ...serverOptions, store: this.store, log: (line) => void this.requests.push(line) });
    this.url = (await this.server.start()).url;
    this.dir = await mkdtemp(join(tmpdir(), 'lab-apiserver-'));
    this.kubeconfig = join(this.dir, 'kubeconfig');
    await writeKubeconfig(this.kubeconfig, this.url, this.options.token);
    return this;
  }

  async close(): Promise<void> {
    await this.server.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Runs kubectl (default: the harness's binary, else 1.32) with its own HOME and cache. */
  kubectl(args: string[], opts: { bin?: string; timeoutMs?: number } = {}): Promise<Run> {
    const bin = opts.bin ?? this.options.kubectl ?? `${KUBECTL_BIN}/kubectl.1.32`;
    return new Promise((resolve) => {
      execFile(
        bin,
        [`--kubeconfig=${this.kubeconfig}`, `--cache-dir=${join(this.dir, 'cache', bin.replace(/\W/g, '_'))}`, ...args],
        { timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, HOME: this.dir, KUBECONFIG: this.kubeconfig } },
        (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? Number((err as { code: number }).code) : 1) : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        },
      );
    });
  }

  async ok(args: string[], opts: { bin?: string } = {}): Promise<string> {
    const r = await this.kubectl(args, opts);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')} (${opts.bin ?? this.options.kubectl ?? '1.32'}) should succeed\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  async file(name: string, text: string): Promise<string> {
    const p = join(this.dir, name);
    await writeFile(p, text);
    return p;
  }

  async api(method: string, path: string, opts: { body?: unknown; contentType?: string; accept?: string; token?: string } = {}): Promise<Http> {
    const headers: Record<string, string> = {};
    const token = opts.token ?? this.options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.accept) headers.accept = opts.accept;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    const res = await fetch(`${this.url}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  }

  kubeConfig(): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'lab', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'lab', token: this.options.token }],
      contexts: [{ name: 'lab', cluster: 'lab', user: 'lab', namespace: 'default' }],
      currentContext: 'lab',
    });
    return kc;
  }

  /** Request log lines since `from`. */
  since(from: number): string[] {
    return this.requests.slice(from);
  }
}
