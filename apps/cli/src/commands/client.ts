import type { Command } from 'commander';
import type { ClientConfig } from '@fedlora/client';
import { loadClientConfig, loadFleetConfig, parseFleetSlice, runClientFromConfig, runFleet } from '@fedlora/client';
import { createEventLogger } from '@fedlora/coordinator';
import { unknownEnvWarnings } from '../env-check.js';
import { CliError, info, printJson } from '../output.js';

/** The JSON log level a client config asks for. */
function levelOf(cfg: ClientConfig) {
  return cfg.log.level === 'trace' ? 'debug' : cfg.log.level === 'fatal' ? 'error' : cfg.log.level;
}

/** `fedlora client --config FILE` (an institution's node) or `--fleet FILE` (many institutions in one process). */
export function register(program: Command): void {
  program
    .command('client')
    .description("Run an institution's client node: dials the coordinator, trains on local data, sends only the update")
    .option('-c, --config <file>', 'client YAML config (fedlora provision writes one per institution)')
    .option('--fleet <file>', 'fleet YAML: many institutions in this process, each its own node (identity, member list, budget, ledger); one shared base model')
    .option('--slice <index:size>', 'with --fleet: run only institutions [index*size, (index+1)*size) (e.g. a Kubernetes Indexed Job pod: $JOB_COMPLETION_INDEX:50)')
    .option('--json', 'print a JSON summary on stdout when the federation finishes')
    .addHelpText(
      'after',
      '\nEvery config key can be overridden from the environment as FEDLORA_<SECTION>_<KEY>, e.g. FEDLORA_DATA_PATH=/data/notes.txt,' +
        '\nor with the scoped name FEDLORA_CLIENT_<SECTION>_<KEY>, which only the client reads and which wins (not for --fleet entries).',
    )
    .action(async (o: { config?: string; fleet?: string; slice?: string; json?: boolean }) => {
      if (!o.config === !o.fleet) throw new CliError('expected exactly one of --config FILE (one institution) or --fleet FILE (many), received ' + (o.config ? 'both' : 'neither'), 2);
      if (o.slice && !o.fleet) throw new CliError('--slice selects institutions of a --fleet file; received it without --fleet', 2);
      const abort = new AbortController();
      let signalled = '';
      const onSignal = (signal: string) => {
        signalled = signal;
        abort.abort();
      };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      if (o.fleet) {
        let slice;
        try {
          slice = o.slice ? parseFleetSlice(o.slice) : undefined;
        } catch (err) {
          throw new CliError((err as Error).message, 2);
        }
        const configs = loadFleetConfig(o.fleet, slice);
        const r = await runFleet(configs, (cfg) => createEventLogger(levelOf(cfg), { component: 'client', client: cfg.name }), abort.signal);
        const institutions = r.institutions.map((m) => (signalled && !m.stopped ? { ...m, stopped: `${signalled} received` } : m));
        if (o.json) printJson({ fleet: o.fleet, backend: r.backend, institutions });
        else for (const m of institutions) info(`fedlora client ${m.client}: ${m.stopped ? `stopped: ${m.stopped}` : 'federation finished'}; trained in rounds ${m.roundsTrained.join(', ') || '(none)'}`);
        if (institutions.some((m) => m.failed)) process.exitCode = 1;
        if (signalled) process.exit(process.exitCode ?? 0);
        return;
      }
      const cfg = loadClientConfig(o.config!);
      for (const w of unknownEnvWarnings()) info(w);
      const log = createEventLogger(levelOf(cfg), { component: 'client', client: cfg.name });
      const result = await runClientFromConfig(cfg, log, abort.signal);
      // A signal ends the run early: say so instead of reporting a finished federation.
      const r = signalled && !result.stopped ? { ...result, stopped: `${signalled} received` } : result;
      if (o.json) printJson({ client: cfg.name, backend: r.backend, roundsTrained: r.roundsTrained, ...(r.stopped ? { stopped: r.stopped } : {}) });
      else if (r.stopped) info(`fedlora client ${cfg.name}: stopped before the federation finished: ${r.stopped}; trained in rounds ${r.roundsTrained.join(', ') || '(none)'}`);
      else info(`fedlora client ${cfg.name}: federation finished; trained in rounds ${r.roundsTrained.join(', ') || '(none)'}`);
      // Told to stop, the run returned at once (its calls are cancelled); leave now that the result is out:
      // a TLS handshake with a coordinator that hangs holds a socket grpc-js does not release on close.
      if (signalled) process.exit(process.exitCode ?? 0);
    });
}
