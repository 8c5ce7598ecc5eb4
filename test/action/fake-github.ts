import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local fake of the parts of the GitHub REST API the Action uses (Deployments, Deployment statuses, issue comments,
 * pull-request files), on 127.0.0.1. It records every call in order and can answer the next calls with an error.
 */

export interface RecordedCall {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  authorization: string;
}

export interface FakeComment {
  id: number;
  body: string;
}

export interface FakeGitHub {
  url: string;
  calls: RecordedCall[];
  comments: Map<number, FakeComment[]>;
  /** Pull-request files (filename + unified-diff patch) per pull number. */
  files: Map<number, Array<{ filename: string; patch: string }>>;
  /** The next `times` calls whose "METHOD path" matches answer `status`. */
  failNext(pattern: RegExp, status: number, times?: number): void;
  /** "METHOD path" of every call, in order. */
  log(): string[];
  close(): Promise<void>;
}

const PAGE = 100;

export async function startFakeGitHub(): Promise<FakeGitHub> {
  const calls: RecordedCall[] = [];
  const comments = new Map<number, FakeComment[]>();
  const files = new Map<number, Array<{ filename: string; patch: string }>>();
  const failures: Array<{ pattern: RegExp; status: number; left: number }> = [];
  let nextId = 1000;
  let base = '';

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    const url = new URL(req.url ?? '/', base);
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { message: 'Problems parsing JSON' });
    }
    const call: RecordedCall = { method: req.method ?? '', path: url.pathname, query: url.searchParams, body, authorization: String(req.headers.authorization ?? '') };
    calls.push(call);
    const key = `${call.method} ${call.path}`;
    const failure = failures.find((f) => f.left > 0 && f.pattern.test(key));
    if (failure) {
      failure.left--;
      return send(res, failure.status, { message: `injected ${failure.status}` });
    }
    let m: RegExpExecArray | null;
    if (call.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/deployments$/.test(call.path)) return send(res, 201, { id: nextId++, ref: body.ref, environment: body.environment });
    if (call.method === 'POST' && (m = /^\/repos\/[^/]+\/[^/]+\/deployments\/(\d+)\/statuses$/.exec(call.path))) return send(res, 201, { id: nextId++, deployment_id: Number(m[1]), state: body.state });
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(call.path))) {
      const n = Number(m[3]);
      const list = comments.get(n) ?? [];
      if (call.method === 'GET') {
        const page = Number(url.searchParams.get('page') ?? '1');
        const slice = list.slice((page - 1) * PAGE, page * PAGE);
        const more = page * PAGE < list.length;
        const next = new URL(url);
        next.searchParams.set('page', String(page + 1));
        return send(res, 200, slice.map((c) => ({ id: c.id, body: c.body })), more ? { link: `<${next.toString()}>; rel="next"` } : {});
      }
      if (call.method === 'POST') {
        const c = { id: nextId++, body: String(body.body ?? '') };
        comments.set(n, [...list, c]);
        return send(res, 201, { id: c.id, body: c.body, html_url: `https://github.example/${m[1]}/${m[2]}/pull/${n}#issuecomment-${c.id}` });
      }
    }
    if (call.method === 'PATCH' && (m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(call.path))) {
      const id = Number(m[3]);
      for (const [n, list] of comments) {
        const c = list.find((x) => x.id === id);
        if (c) {
          c.body = String(body.body ?? '');
          return send(res, 200, { id, body: c.body, html_url: `https://github.example/${m[1]}/${m[2]}/pull/${n}#issuecomment-${id}` });
        }
      }
      return send(res, 404, { message: 'Not Found' });
    }
    if (call.method === 'GET' && (m = /^\/repos\/[^/]+\/[^/]+\/pulls\/(\d+)\/files$/.exec(call.path))) return send(res, 200, files.get(Number(m[1])) ?? []);
    return send(res, 404, { message: `the fake has no ${key}` });
  };

  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => handle(req, res, raw));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    calls,
    comments,
    files,
    failNext: (pattern, status, times = 1) => failures.push({ pattern, status, left: times }),
    log: () => calls.map((c) => `${c.method} ${c.path}`),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
