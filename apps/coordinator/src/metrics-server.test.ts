import { afterEach, describe, expect, it } from 'vitest';
import type { RoundSummary } from '@fedlora/federation';
import { createCoordinatorMetrics, type CoordinatorStatusView } from './metrics.js';
import { parseHostPort, startMetricsServer, type RunningMetricsServer } from './metrics-server.js';

function summary(over: Partial<RoundSummary>): RoundSummary {
  return {
    round: 1,
    attempt: 1,
    status: 'completed',
    participants: 3,
    participantNames: ['a', 'b', 'c'],
    cohort: 4,
    dropped: ['d'],
    declined: [],
    trainLoss: 1,
    numExamples: 30,
    adapterSha256: null,
    startedAt: 1_000,
    endedAt: 13_000,
    metrics: {},
    ...over,
  };
}

let running: RunningMetricsServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function get(path: string): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(`http://127.0.0.1:${running!.port}${path}`);
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

describe('coordinator metrics endpoint', () => {
  it('serves round, participant, byte and refusal counters and the scrape-time gauges', async () => {
    const m = createCoordinatorMetrics();
    const view: CoordinatorStatusView = { state: 'training', currentRound: 3, completedRounds: 2, totalRounds: 5, connectedClients: 4, uploadBufferedBytes: 65536 };
    m.observe(() => view);
    m.roundEnded(summary({}));
    m.roundEnded(summary({ round: 2, status: 'completed', participants: 2 }));
    m.roundEnded(summary({ round: 3, status: 'aborted', participants: 0, reason: 'too few reports' }));
    m.bytes('in', 1000);
    m.bytes('out', 250);
    m.bytes('in', Number.NaN);
    m.refused({ method: 'Register', reason: 'unknown-identity' });
    m.refused({ method: 'Register', reason: 'unknown-identity' });
    m.refused({ method: 'Heartbeat', reason: 'revoked' });
    running = await startMetricsServer({ listen: '127.0.0.1:0', registry: m.registry, health: () => ({ ok: true }) });

    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain/);
    const lines = r.body.split('\n');
    for (const line of [
      'fedlora_rounds_completed_total 2',
      'fedlora_rounds_aborted_total 1',
      'fedlora_participant_updates_total 5',
      'fedlora_round_participants 0',
      'fedlora_bytes_total{direction="in"} 1000',
      'fedlora_bytes_total{direction="out"} 250',
      'fedlora_requests_refused_total{method="Register",reason="unknown-identity"} 2',
      'fedlora_requests_refused_total{method="Heartbeat",reason="revoked"} 1',
      'fedlora_round_duration_seconds_count{status="completed"} 2',
      'fedlora_round_duration_seconds_sum{status="completed"} 24',
      'fedlora_current_round 3',
      'fedlora_completed_rounds 2',
      'fedlora_total_rounds 5',
      'fedlora_connected_clients 4',
      'fedlora_upload_buffered_bytes 65536',
      'fedlora_run_state{state="training"} 1',
      'fedlora_run_state{state="finished"} 0',
    ]) {
      expect(lines).toContain(line);
    }
    expect(r.body).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(r.body).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('/healthz answers 200 with the JSON state, 503 when the run failed; unknown paths 404', async () => {
    let ok = true;
    const m = createCoordinatorMetrics();
    running = await startMetricsServer({ listen: '127.0.0.1:0', registry: m.registry, health: () => ({ ok, state: ok ? 'training' : 'failed', currentRound: 2 }) });
    const healthy = await get('/healthz');
    expect(healthy.status).toBe(200);
    expect(healthy.type).toBe('application/json');
    expect(JSON.parse(healthy.body)).toEqual({ ok: true, state: 'training', currentRound: 2 });
    ok = false;
    expect((await get('/healthz')).status).toBe(503);
    expect((await get('/nope')).status).toBe(404);
  });

  it('a failing health callback is a 500 with a generic message, reported to onError', async () => {
    const errors: unknown[] = [];
    running = await startMetricsServer({
      listen: '127.0.0.1:0',
      registry: createCoordinatorMetrics().registry,
      health: () => {
        throw new Error('secret internal state');
      },
      onError: (e) => errors.push(e),
    });
    const r = await get('/healthz');
    expect(r.status).toBe(500);
    expect(r.body).not.toMatch(/secret/);
    expect(errors).toHaveLength(1);
  });

  it('names the address when it cannot listen, and rejects a malformed one', async () => {
    running = await startMetricsServer({ listen: '127.0.0.1:0', registry: createCoordinatorMetrics().registry, health: () => ({ ok: true }) });
    await expect(startMetricsServer({ listen: `127.0.0.1:${running.port}`, registry: createCoordinatorMetrics().registry, health: () => ({ ok: true }) })).rejects.toThrow(
      new RegExp(`metrics.listen 127.0.0.1:${running.port}: cannot listen \\(EADDRINUSE\\)`),
    );
    expect(() => parseHostPort('localhost')).toThrow(/metrics.listen: expected host:port/);
    expect(parseHostPort('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
  });
});
