import type { Command } from 'commander';
import { loadCoordinatorConfig, startCoordinatorFromConfig } from '@fedlora/coordinator';
import { unknownEnvWarnings } from '../env-check.js';
import { CliError, info, printJson } from '../output.js';
import { explainFailedRun, type CoordinatorRunSummary } from './coordinator-outcome.js';

/** `fedlora coordinator --config FILE`: runs the federation's coordinator. */
export function register(program: Command): void {
  program
    .command('coordinator')
    .description('Run the coordinator: gRPC server, round loop, SQLite state in dataDir (resumes after a restart)')
    .requiredOption('-c, --config <file>', 'coordinator YAML config (fedlora provision writes one)')
    .option('--exit-when-done', 'exit 0 once the configured rounds are committed (for scripts and tests)')
    .option('--json', 'print a JSON summary on stdout when the run ends (finished or failed)')
    .addHelpText(
      'after',
      '\nEvery config key can be overridden from the environment as FEDLORA_<SECTION>_<KEY>, e.g. FEDLORA_ROUNDS_TOTAL=10,' +
        '\nor with the scoped name FEDLORA_COORDINATOR_<SECTION>_<KEY>, which only the coordinator reads and which wins.',
    )
    .action(async (o: { config: string; exitWhenDone?: boolean; json?: boolean }) => {
      const cfg = loadCoordinatorConfig(o.config);
      for (const w of unknownEnvWarnings()) info(w);
      const c = await startCoordinatorFromConfig(cfg);
      let stopping = false;
      const stop = async (signal: string) => {
        stopping = true;
        info(`fedlora coordinator: ${signal}, shutting down`);
        await c.close();
        process.exit(130);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
      // Announced only once the handlers are in place, so a supervisor that signals on this line is heard.
      info(`fedlora coordinator: federation ${cfg.federationId} listening on port ${c.app.port} (backend ${c.backend}${cfg.insecure ? ', INSECURE: no TLS' : ', TLS'})`);
      let history;
      try {
        history = await c.done;
      } catch (err) {
        if (stopping) return new Promise<void>(() => {}); // stop() exits once the server is closed
        const error = explainFailedRun((err as Error).message, c.app.coordinator.rounds);
        // Clients polling for a task learn that the run failed (and stop) before the server goes away.
        await c.app.coordinator.drain(15_000);
        await c.close();
        if (o.json) printJson({ federationId: cfg.federationId, state: 'failed', rounds: c.app.coordinator.rounds, error } satisfies CoordinatorRunSummary);
        throw new CliError(`the run failed: ${error}`);
      }
      // A signal stops the round loop, which then resolves with the rounds so far: not a finished run.
      if (stopping) return new Promise<void>(() => {}); // stop() exits once the server is closed
      const summary: CoordinatorRunSummary = { federationId: cfg.federationId, state: 'finished', rounds: history, finalAdapterDir: `${cfg.dataDir}/final-adapter` };
      if (o.json) printJson(summary);
      else info(`fedlora coordinator: all ${cfg.rounds.total} rounds committed; final adapter in ${summary.finalAdapterDir}`);
      if (o.exitWhenDone) {
        // Every client of the run learns that it finished (one still backing off after a restart is waited for too).
        await c.app.coordinator.drain(Math.max(15_000, cfg.rounds.rejoinGraceSeconds * 1000));
        await c.close();
        return;
      }
      info('fedlora coordinator: run finished; still serving status (Ctrl-C to exit, or use --exit-when-done)');
      await new Promise(() => {});
    });
}
