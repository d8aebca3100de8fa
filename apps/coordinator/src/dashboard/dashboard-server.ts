/**
 * The coordinator's read-only web dashboard (config key `dashboard`): a small node:http(s)
 * server with four routes. `/`, `/dashboard.js` and `/dashboard.css` are the static page (no
 * data in them); `/api/state` is the data, for an authenticated reader only, cut to the reader's
 * role, with the charts rendered to SVG on the server (charts.ts). The page polls it; an ETag
 * makes an unchanged state cost a 304.
 *
 * Hardening: GET and HEAD only; a strict CSP (no inline script or style, no framing); nosniff;
 * no caching; request headers capped (431), slow requests timed out; every failure inside a
 * handler becomes a 500 without taking the coordinator down.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { parseHostPort } from '../metrics-server.js';
import { isLoopbackHost } from '../config.js';
import type { DashboardAuthOptions, DashboardRole } from './dashboard-auth.js';
import { createDashboardAuth } from './dashboard-auth.js';
import { epsilonChartSpec, budgetChartSpec, renderSvg, trainingChartSpecs } from './charts.js';
import type { DashboardSource, DashboardSnapshot } from './dashboard-state.js';
import { buildSnapshot } from './dashboard-state.js';

/** A refused request, for the log and the audit log (no credential material in it). */
export interface DashboardRefusal {
  method: string;
  path: string;
  status: number;
  reason: string;
  remoteAddress: string;
}

/** Options of `startDashboardServer`. */
export interface DashboardServerOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  source: DashboardSource;
  auth: Omit<DashboardAuthOptions, 'loopback'>;
  /** HTTPS (and client certificates of `ca`) when given. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer };
  onRefused?: (r: DashboardRefusal) => void;
  onError?: (err: unknown) => void;
  /** How often the page asks for new state, ms (default 2000). */
  pollMs?: number;
}

/** A listening dashboard. */
export interface RunningDashboard {
  port: number;
  url: string;
  close(): Promise<void>;
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const ASSETS = new URL('./assets/', import.meta.url);
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/** The SVG charts of a snapshot, rendered once per distinct chart data. */
function chartRenderer(): (s: DashboardSnapshot) => Promise<Record<string, string | null>> {
  let key = '';
  let charts: Record<string, string | null> = {};
  return async (s) => {
    const series = s.privacy.ledgers.map((l) => l.series);
    const k = JSON.stringify([series, s.training ?? null]);
    if (k === key) return charts;
    const budget = budgetChartSpec(series);
    const training = trainingChartSpecs(s.training ?? []);
    charts = {
      epsilon: series.some((x) => x.points.length > 0) ? await renderSvg(epsilonChartSpec(series)) : null,
      budget: budget && series.some((x) => x.points.length > 0) ? await renderSvg(budget) : null,
      loss: training[0] ? await renderSvg(training[0]) : null,
      mcq: training[1] ? await renderSvg(training[1]) : null,
    };
    key = k;
    return charts;
  };
}

/** Starts the dashboard; rejects with a message naming the address when it cannot bind. */
export async function startDashboardServer(o: DashboardServerOptions): Promise<RunningDashboard> {
  const { host, port } = parseHostPort(o.listen);
  const authorize = createDashboardAuth({ ...o.auth, loopback: isLoopbackHost(host) });
  const assets = Object.fromEntries(Object.entries(STATIC).map(([route, a]) => [route, { type: a.type, body: readFileSync(new URL(a.file, ASSETS)) }]));
  const charts = { operator: chartRenderer(), auditor: chartRenderer() } satisfies Record<DashboardRole, unknown>;
  const headers = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-resource-policy': 'same-origin', ...(o.tls ? { 'strict-transport-security': 'max-age=31536000' } : {}) };

  const send = (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void => {
    res.writeHead(status, { ...headers, 'content-type': type, ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    const asset = Object.hasOwn(STATIC, path) ? assets[path] : undefined;
    if (asset) return send(req, res, 200, asset.type, asset.body);
    if (path === '/favicon.ico') return send(req, res, 204, 'text/plain; charset=utf-8', '');
    if (path !== '/api/state') return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
    const verdict = authorize(req);
    if (!verdict.ok) {
      o.onRefused?.({ method: req.method ?? '?', path: path.slice(0, 100), status: verdict.status, reason: verdict.reason, remoteAddress: req.socket.remoteAddress ?? '?' });
      return send(req, res, verdict.status, 'application/json', `${JSON.stringify({ error: verdict.status === 401 ? 'authentication required' : 'forbidden' })}\n`, verdict.status === 401 ? { 'www-authenticate': 'Bearer realm="fedlora dashboard"' } : {});
    }
    const snapshot = buildSnapshot(o.source, verdict.role);
    const body = JSON.stringify({ ...snapshot, pollMs: o.pollMs ?? 2000, charts: await charts[verdict.role](snapshot) });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    if (req.headers['if-none-match'] === etag) return send(req, res, 304, 'application/json', '', { etag });
    return send(req, res, 200, 'application/json', body, { etag });
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      o.onError?.(err);
      if (!res.headersSent) send(req, res, 500, 'text/plain; charset=utf-8', 'internal error (see the coordinator log)\n');
      else res.end();
    });
  };
  const limits = { maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 };
  const server: Server = o.tls
    ? createHttpsServer({ ...limits, cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, listener)
    : createHttpServer(limits, listener);
  server.maxConnections = 256;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
    else socket.destroy();
  });
  // CONNECT and Upgrade requests never reach the handler: answer them here and close.
  const refuseRaw = (_req: IncomingMessage, socket: import('node:stream').Duplex): void => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\nconnection: close\r\n\r\n');
  };
  server.on('connect', refuseRaw);
  server.on('upgrade', refuseRaw);
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`dashboard.listen ${o.listen}: cannot listen (${err.code ?? err.message})`)));
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    port: bound,
    url: `${o.tls ? 'https' : 'http'}://${shownHost}:${bound}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
