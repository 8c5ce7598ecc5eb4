import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';

/**
 * An HTTP server on a random port of 127.0.0.1 that the lab can close at once (open connections included) and that
 * never keeps the process alive on its own. A handler that throws is answered by `onError`.
 */
export class LoopbackHttpServer {
  url = '';
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
    onError: (res: ServerResponse, err: unknown) => void,
  ) {
    this.server = createServer((req, res) => {
      handler(req, res).catch((err: unknown) => onError(res, err));
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  listen(host = '127.0.0.1'): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => {
        this.url = `http://${host}:${(this.server.address() as AddressInfo).port}`;
        this.server.unref();
        resolve(this.url);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}

/** Listens on an ephemeral 127.0.0.1 port (unref'd, so it never keeps the process alive) and answers the port. */
export function listenOnLoopback(server: NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.unref();
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting and cuts the open connections (a data plane going away drops what it carries). */
export function closeWithSockets(server: NetServer, sockets: Iterable<Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}
