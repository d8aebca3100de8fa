import type { Command } from 'commander';
import { loadClientConfig, runClientFromConfig } from '@fedlora/client';
import { createEventLogger } from '@fedlora/coordinator';
import { unknownEnvWarnings } from '../env-check.js';
import { info, printJson } from '../output.js';

/** `fedlora client --config FILE`: runs an institution's node next to its private data. */
export function register(program: Command): void {
  program
    .command('client')
    .description("Run an institution's client node: dials the coordinator, trains on local data, sends only the update")
    .requiredOption('-c, --config <file>', 'client YAML config (fedlora provision writes one per institution)')
    .option('--json', 'print a JSON summary on stdout when the federation finishes')
    .addHelpText(
      'after',
      '\nEvery config key can be overridden from the environment as FEDLORA_<SECTION>_<KEY>, e.g. FEDLORA_DATA_PATH=/data/notes.txt,' +
        '\nor with the scoped name FEDLORA_CLIENT_<SECTION>_<KEY>, which only the client reads and which wins.',
    )
    .action(async (o: { config: string; json?: boolean }) => {
      const cfg = loadClientConfig(o.config);
      for (const w of unknownEnvWarnings()) info(w);
      const level = cfg.log.level === 'trace' ? 'debug' : cfg.log.level === 'fatal' ? 'error' : cfg.log.level;
      const log = createEventLogger(level, { component: 'client', client: cfg.name });
      const abort = new AbortController();
      let signalled = '';
      const onSignal = (signal: string) => {
        signalled = signal;
        abort.abort();
      };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
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
