// A TCP proxy on 127.0.0.1 between a client and a server, with faults and link models for tests
// and benchmarks: drop or stall connections, go down after N bytes, hold traffic, add latency
// and cap each connection's bandwidth. It also counts the HTTP requests it carries.
import net from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
}

interface Link {
  readonly pump: () => void;
}

const REQUEST_LINE = /(?:^|\r\n)(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP\/1\.1\r\n/g;
const HIGH_WATER = 4 * 1024 * 1024;

export class TcpProxy {
  /** The next N connections are closed as soon as the client sends something. */
  dropConnections = 0;
  /** The next N connections are accepted and then never answered. */
  stallConnections = 0;
  /** Delay added to every chunk, each way (a request/response round trip costs twice this). */
  latencyMs = 0;
  /** Per connection and direction; 0 = unlimited. */
  bytesPerSecond = 0;
  /** A connection carrying a request this returns true for is reset before the request is passed on. */
  dropRequests: ((r: SeenRequest) => boolean) | undefined;
  /** After this many client-to-server bytes in total the proxy goes down (as a crashed server). */
  cutAfterBytes: number | undefined;
  /** HTTP request lines seen from clients. */
  readonly requests: SeenRequest[] = [];
  connections = 0;
  dropped = 0;
  stalled = 0;
  bytesUp = 0;
  /** When server bytes were last passed on to a client (performance.timeOrigin + now, ms). */
  lastDownAt = 0;

  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private holding = false;
  private readonly links = new Set<Link>();
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests with this method (e.g. PUT) whose path contains `text`. */
  count(method: string, text = ''): number {
    return this.requests.filter((r) => r.method === method && r.path.includes(text)).length;
  }

  async start(port = 0): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
  }

  /** Like a server that died: every connection reset, new ones refused. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Back up on the same port. */
  async up(): Promise<void> {
    if (!this.server) await this.start(this.port);
  }

  /** Traffic stops flowing (connections stay open) until release(). */
  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const l of this.links) l.pump();
  }

  async close(): Promise<void> {
    await this.down();
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private accept(client: net.Socket): void {
    this.connections++;
    this.track(client);
    if (this.dropConnections > 0) {
      this.dropConnections--;
      this.dropped++;
      client.once('data', () => client.resetAndDestroy());
      return;
    }
    if (this.stallConnections > 0) {
      this.stallConnections--;
      this.stalled++;
      client.on('data', () => undefined);
      return;
    }
    const server = net.connect(this.targetPort, this.targetHost);
    this.track(server);
    server.on('close', () => client.destroy());
    client.on('close', () => server.destroy());
    this.link(client, server, (chunk) => {
      this.bytesUp += chunk.length;
      // A request starts a fresh write, so its line opens a chunk: no need to scan bodies.
      for (const m of chunk.subarray(0, 2048).toString('latin1').matchAll(REQUEST_LINE)) {
        const seen = { method: m[1]!, path: m[2]! };
        this.requests.push(seen);
        if (this.dropRequests?.(seen)) {
          this.dropped++;
          client.resetAndDestroy();
          server.destroy();
          return false;
        }
      }
      if (this.cutAfterBytes !== undefined && this.bytesUp > this.cutAfterBytes) {
        this.cutAfterBytes = undefined;
        void this.down();
        return false;
      }
      return true;
    });
    this.link(server, client, undefined, true);
  }

  /** Forwards src to dst through a queue that applies hold, latency and the bandwidth cap. */
  private link(src: net.Socket, dst: net.Socket, inspect?: (chunk: Buffer) => boolean, down = false): void {
    const queue: { chunk: Buffer; due: number }[] = [];
    let queued = 0;
    let nextFree = 0;
    let timer: NodeJS.Timeout | undefined;
    let waitingDrain = false;
    let ended = false;
    const pump = (): void => {
      if (timer || waitingDrain || this.holding || dst.destroyed) return;
      while (queue.length > 0) {
        const head = queue[0]!;
        const now = performance.now();
        const at = Math.max(head.due, nextFree);
        if (at - now > 1) {
          timer = setTimeout(() => {
            timer = undefined;
            pump();
          }, at - now);
          return;
        }
        queue.shift();
        queued -= head.chunk.length;
        // The chunk's slot on the link starts when it was due, not when this timer got to run: a
        // late timer delays the chunk but does not shrink the link (it lost ~17% under load).
        if (this.bytesPerSecond > 0)
          nextFree = Math.max(nextFree, head.due) + (head.chunk.length / this.bytesPerSecond) * 1000;
        if (queued < HIGH_WATER / 2) src.resume();
        if (down) this.lastDownAt = performance.timeOrigin + now;
        if (!dst.write(head.chunk)) {
          waitingDrain = true;
          dst.once('drain', () => {
            waitingDrain = false;
            pump();
          });
          return;
        }
      }
      if (ended) dst.end();
    };
    const link: Link = { pump };
    this.links.add(link);
    src.on('close', () => {
      this.links.delete(link);
      if (timer) clearTimeout(timer);
    });
    src.on('data', (chunk: Buffer) => {
      if (inspect && !inspect(chunk)) return;
      queue.push({ chunk, due: performance.now() + this.latencyMs });
      queued += chunk.length;
      if (queued > HIGH_WATER) src.pause();
      pump();
    });
    src.on('end', () => {
      ended = true;
      pump();
    });
  }
}
