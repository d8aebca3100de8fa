/**
 * The coordinator's operations HTTP endpoint (config key `metrics.listen`): Prometheus text at
 * GET /metrics and GET /healthz answering 200 with a JSON summary of the run (503 once the run
 * has failed), so load balancers and orchestrators can probe it. Plain HTTP on purpose: it
 * carries no federation data; bind it to a private interface.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/** What /healthz reports; `ok: false` turns the status code into 503. */
export type HealthReport = { ok: boolean } & Record<string, unknown>;

/** Options of `startMetricsServer`. */
export interface MetricsServerOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  registry: Registry;
  health: () => HealthReport;
  /** Called when serving a request fails (a scrape callback threw). */
  onError?: (err: unknown) => void;
}

/** A listening operations endpoint. */
export interface RunningMetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Splits `host:port` (IPv6 hosts in brackets). RangeError names the value. */
export function parseHostPort(listen: string): { host: string; port: number } {
  const m = /^(\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[4]) : NaN;
  if (!m || port > 65535) throw new RangeError(`metrics.listen: expected host:port (e.g. 127.0.0.1:9464), received ${JSON.stringify(listen)}`);
  return { host: m[2] ?? m[3]!, port };
}

/** Starts the HTTP server; rejects with a message naming the address when it cannot bind. */
export async function startMetricsServer(o: MetricsServerOptions): Promise<RunningMetricsServer> {
  const { host, port } = parseHostPort(o.listen);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    if (path === '/metrics') return send(res, 200, o.registry.contentType, await o.registry.metrics());
    if (path === '/healthz') {
      const report = o.health();
      return send(res, report.ok ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
    }
    return send(res, 404, 'text/plain', 'not found: try /metrics or /healthz\n');
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      o.onError?.(err);
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error (see the coordinator log)\n');
      else res.end();
    });
  });
  server.keepAliveTimeout = 5000;
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`metrics.listen ${o.listen}: cannot listen (${err.code ?? err.message})`)));
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** The /healthz document of a coordinator: its operator view, healthy unless the run failed. */
export function coordinatorHealth(status: { federationId: string; state: string; currentRound: number; completedRounds: number; totalRounds: number; connectedClients: number }, extra: { grpcPort: number; startedAt: number; now?: number }): HealthReport {
  const { federationId, state, currentRound, completedRounds, totalRounds, connectedClients } = status;
  const now = extra.now ?? Date.now();
  return { ok: state !== 'failed', federationId, state, currentRound, completedRounds, totalRounds, connectedClients, grpcPort: extra.grpcPort, uptimeSeconds: Math.max(0, Math.round((now - extra.startedAt) / 1000)) };
}
