import type { Socket } from 'node:net';
import { type PodConnection, type PodNetwork, connectToPod } from '../network.js';
import type { LabClock } from '../timing.js';

/**
 * The ALB's keep-alive connections to its targets (one pool per load balancer). A connection whose response is
 * complete goes back to the pool and carries a later request to the same ip:port; the ALB closes a connection
 * that has been idle for its idle timeout (60 s by default, `idle_timeout.timeout_seconds`).
 *
 * The failure this models: a target whose own keep-alive timeout is shorter than the ALB's closes an idle pooled
 * connection; a request the ALB sends on it before the close has reached the ALB is answered by a reset — a 502
 * (AWS: "The target closed the connection … keep-alive timeout … greater than the idle timeout of the load
 * balancer"). The close reaches the pool `albTargetCloseNoticeSeconds` after the target sent it; a connection taken
 * in that window is `stale`. Connections are taken oldest-idle first, so the one closest to the target's timeout
 * is the next one used.
 */

interface Idle {
  socket: Socket;
  /** The real listener port the connection leads to (a released and reused pod IP leads elsewhere). */
  realPort: number;
  /** Set when the target closed it; the pool drops it once the close has been noticed. */
  closedAt?: number;
  timer?: NodeJS.Timeout;
  /** The pool's own listeners on the socket while it is idle (removed when a request takes it). */
  onClose?: () => void;
}

const ignoreError = (): void => undefined;

export type PooledConnection = (PodConnection & { reused?: boolean; realPort?: number }) | { kind: 'stale' };

export class TargetConnectionPool {
  private readonly idle = new Map<string, Idle[]>();
  private closed = false;

  constructor(
    private readonly clock: LabClock,
    private readonly network: PodNetwork,
    private readonly idleTimeoutSeconds: () => number,
  ) {}

  /** A connection to `ip:port`: an idle pooled one when its route still leads to the same listener, else a new one. */
  acquire(ip: string, port: number): PooledConnection {
    const key = `${ip}:${port}`;
    const list = this.idle.get(key) ?? [];
    const route = this.network.route(ip, port);
    while (list.length > 0) {
      const c = list.shift()!;
      clearTimeout(c.timer);
      if (route.kind !== 'listener' || route.port !== c.realPort) {
        // The pod is gone (or its IP now belongs to another pod): nothing answers on that connection any more.
        c.socket.destroy();
        continue;
      }
      if (c.closedAt !== undefined) {
        // The request is already on its way when the target's close arrives: the target answers it with a reset.
        c.socket.destroy();
        return { kind: 'stale' };
      }
      if (c.socket.destroyed || !c.socket.writable) continue;
      this.unlisten(c);
      return { kind: 'socket', socket: c.socket, reused: true, realPort: c.realPort };
    }
    if (list.length === 0) this.idle.delete(key);
    const conn = connectToPod(this.network, ip, port);
    return conn.kind === 'socket' && route.kind === 'listener' ? { ...conn, realPort: route.port } : conn;
  }

  /** The response on `socket` is complete and the target keeps the connection open: it goes back to the pool. */
  release(ip: string, port: number, socket: Socket, realPort: number): void {
    if (this.closed || socket.destroyed || !socket.writable) {
      socket.destroy();
      return;
    }
    const key = `${ip}:${port}`;
    const c: Idle = { socket, realPort };
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    list.push(c);
    const drop = (): void => {
      const l = this.idle.get(key);
      const i = l?.indexOf(c) ?? -1;
      if (l && i >= 0) l.splice(i, 1);
      if (l?.length === 0) this.idle.delete(key);
    };
    const onClose = (): void => {
      if (c.closedAt !== undefined) return;
      c.closedAt = Date.now();
      clearTimeout(c.timer);
      c.timer = this.clock.after(this.clock.delay('albTargetCloseNoticeSeconds'), drop);
    };
    c.onClose = onClose;
    socket.once('end', onClose);
    socket.once('close', onClose);
    socket.on('error', ignoreError);
    // The ALB's own idle timeout: it closes the connection itself.
    c.timer = this.clock.after(this.idleTimeoutSeconds(), () => {
      drop();
      socket.destroy();
    });
  }

  private unlisten(c: Idle): void {
    if (c.onClose) {
      c.socket.removeListener('end', c.onClose);
      c.socket.removeListener('close', c.onClose);
    }
    c.socket.removeListener('error', ignoreError);
  }

  /** Idle connections now in the pool, by ip:port (for tests and lab.json). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, l] of this.idle) if (l.length > 0) out[k] = l.length;
    return out;
  }

  close(): void {
    this.closed = true;
    for (const l of this.idle.values()) {
      for (const c of l) {
        clearTimeout(c.timer);
        c.socket.destroy();
      }
    }
    this.idle.clear();
  }
}
