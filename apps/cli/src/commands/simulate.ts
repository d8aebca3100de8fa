import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { createEventLogger } from '@fedlora/coordinator';
import type { LogLevel } from '@fedlora/coordinator';
import { auditLedgers } from '../audit/audit-report.js';
import { formatAuditText } from '../audit/audit-text.js';
import { isLoopbackHost, parseHostPort } from '@fedlora/coordinator';
import { CliError, formatTable, info, printJson } from '../output.js';
import { createProgressDisplay } from '../simulate/progress.js';
import { runSimulation } from '../simulate/run-simulation.js';
import { intOption, numberOption } from './parse-options.js';
import type { Partition } from '../simulate/partition.js';
import { parsePartition } from '../simulate/partition.js';
import { applyDpSgdDefaults, dpSgdDefaultsFlags } from '../simulate/dp-defaults.js';
import { defaultWorkers, workersUnsupported } from '../simulate/workers-sim.js';
import { calibrateDpFedAvg, readTrustedKeys } from '@fedlora/privacy';

/** `--dashboard`: a loopback host:port (a simulation has no credentials to protect the dashboard with). */
function dashboardListen(value: string): string {
  let host: string;
  try {
    host = parseHostPort(value).host;
  } catch {
    throw new InvalidArgumentError(`--dashboard: expected host:port such as 127.0.0.1:8080, received ${JSON.stringify(value)}`);
  }
  if (!isLoopbackHost(host)) throw new InvalidArgumentError(`--dashboard: expected a loopback address (127.0.0.1 or [::1]; the simulated dashboard has no authentication), received ${JSON.stringify(value)}`);
  return value;
}

/** `fedlora simulate`: a whole federation on this machine over real gRPC on 127.0.0.1. */
export function register(program: Command): void {
  program
    .command('simulate')
    .description('Run a federation on this machine: a real coordinator and N real clients over gRPC on 127.0.0.1, each with a different era of the State of the Union addresses')
    .option('--clients <n>', 'number of clients', intOption('--clients', 1, 10_000), 3)
    .option('--rounds <n>', 'federated rounds', intOption('--rounds', 1, 10_000), 3)
    .option('--local-steps <n>', 'optimizer steps per client per round', intOption('--local-steps', 1, 1_000_000), 15)
    .option('--batch-size <n>', 'sequences per step', intOption('--batch-size', 1, 4096), 8)
    .option('--lr <x>', 'client learning rate (AdamW)', numberOption('--lr', 0, 10), 3e-3)
    .option('--seq-len <n>', 'tokens per training sequence', intOption('--seq-len', 8, 8192), 64)
    .option('--chars-per-client <n>', 'characters of text per client (about 2,800 records of 400 characters at the default; DP-SGD needs many units)', intOption('--chars-per-client', 1000, 50_000_000), 1_000_000)
    .option('--eval-sequences <n>', 'held-out sequences per client for the eval loss', intOption('--eval-sequences', 1, 100_000), 16)
    .option('--clients-per-round <n>', 'cohort per round, drawn by the coordinator from its CSPRNG: a count, or a fraction in (0, 1) of --clients (default: all)', numberOption('--clients-per-round', 1e-9, 1_000_000))
    .option('--sampling <mode>', 'with --clients-per-round: uniform (fixed-size cohort) or poisson (each institution independently; central DP then accounts amplification by sampling)', samplingOption, 'uniform')
    .option('--partition <how>', 'how the SOTU text is split: era (natural split by period, default), iid (shuffled, even), dirichlet:ALPHA (label skew over the president, Hsu et al. 2019)', partitionOption, { kind: 'era' } as Partition)
    .option('--min-clients <n>', 'a round completes only if this many clients report (default: all)', intOption('--min-clients', 1, 10_000))
    .option('--deadline <seconds>', 'round deadline (default: 600, or 1.5 s per member of the cohort if longer: one process trains the whole cohort)', numberOption('--deadline', 1, 86_400))
    .addOption(new Option('--strategy <name>', 'server optimizer').choices(['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad']).default('fedavg'))
    .option('--server-lr <x>', 'server learning rate (default 1 for fedavg, 0.01 for adaptive)', numberOption('--server-lr', 0, 100))
    .option('--proximal-mu <mu>', 'FedProx proximal coefficient (with --strategy fedprox)', numberOption('--proximal-mu', 0, 1e6), 0.01)
    .option('--lora-r <n>', 'LoRA rank', intOption('--lora-r', 1, 1024))
    .addOption(new Option('--lora-variant <v>', 'lora: train and average A and B; ffa: FFA-LoRA, A frozen at the shared seeded initialisation, only B trained and sent (exact aggregation, half the update)').choices(['lora', 'ffa']).default('lora'))
    .option('--model <dir>', 'base model directory (Hugging Face layout); default: the bundled tiny model')
    .option('--backend <name>', 'force a tfjs backend (as FEDLORA_BACKEND): tfjs-node-gpu, tfjs-node, native, wasm, cpu')
    .option('--silent-clients <n>', 'extra clients that register and never answer (fault injection)', intOption('--silent-clients', 0, 64), 0)
    .addOption(new Option('--dp-mode <mode>', 'institution-level DP-FedAvg: central (coordinator adds noise) or distributed (needs --secagg)').choices(['central', 'distributed']))
    .option('--dp-clip <C>', 'L2 clip of each update (DP-FedAvg)', numberOption('--dp-clip', 1e-9, 1e9), 0.1)
    .option('--dp-noise-multiplier <z>', 'noise std / clip (DP-FedAvg; default 1, or calibrated from --dp-epsilon)', numberOption('--dp-noise-multiplier', 1e-9, 1e6))
    .option('--dp-epsilon <e>', 'DP-FedAvg budget first (central mode): calibrate the noise multiplier so --rounds rounds spend this institution-level epsilon at --delta', numberOption('--dp-epsilon', 1e-9, 1e9))
    .option('--dp-adaptive-clip', 'adaptive clipping (Andrew et al. 2021): --dp-clip is the first round\'s C, then C follows a quantile of the update norms')
    .option('--dp-adaptive-quantile <q>', 'with --dp-adaptive-clip: target quantile of unclipped updates', numberOption('--dp-adaptive-quantile', 1e-9, 1 - 1e-9), 0.5)
    .option('--dp-adaptive-lr <x>', 'with --dp-adaptive-clip: learning rate of the geometric clip update', numberOption('--dp-adaptive-lr', 1e-9, 100), 0.2)
    .option('--dp-adaptive-bit-noise <s>', 'with --dp-adaptive-clip: std of the noise on the count of unclipped updates (default max(clients/20, z))', numberOption('--dp-adaptive-bit-noise', 1e-9, 1e9))
    .option('--delta <d>', 'delta of the (epsilon, delta) guarantee', numberOption('--delta', 1e-300, 0.999), 1e-5)
    .option('--client-epsilon <e>', "each institution's own budget (rounds that would exceed it are refused)", numberOption('--client-epsilon', 1e-9, 1e9), 100)
    .option('--dp-sgd-clip <C>', 'record-level DP-SGD inside each client: per-unit L2 clip (enables DP-SGD; default 0.1)', numberOption('--dp-sgd-clip', 1e-9, 1e9))
    .option('--dp-sgd-noise-multiplier <z>', 'record-level DP-SGD: noise std / clip (default: calibrated from --dp-sgd-epsilon, else 1)', numberOption('--dp-sgd-noise-multiplier', 0, 1e6))
    .option('--dp-sgd-max-sequences <n>', 'record-level DP-SGD: at most this many sequences of a unit per step', intOption('--dp-sgd-max-sequences', 1, 1_000_000))
    .addOption(new Option('--dp-sgd-unit <unit>', 'record-level DP-SGD: the privacy unit, a simulated record of about 400 characters (document) or a training sequence').choices(['document', 'sequence']).default('document'))
    .option('--dp-sgd-epsilon <e>', "record-level DP-SGD: each client's budget per unit at --delta; alone it enables DP-SGD and calibrates the noise to spend it over --rounds (rounds that would exceed it are refused)", numberOption('--dp-sgd-epsilon', 1e-9, 1e9))
    .option('--secagg', 'secure aggregation (SecAgg+): the coordinator sees only the sum of the updates')
    .option('--dropout <p>', 'with --secagg: each client vanishes during a round with probability p, at a random stage', numberOption('--dropout', 0, 0.9), 0)
    .option('--secagg-clip <C>', 'with --secagg and no DP: L2 clip of each update before encoding', numberOption('--secagg-clip', 1e-9, 1e9), 10)
    .option('--stage-timeout <seconds>', 'with --secagg: deadline of each protocol stage (default: 10, or 0.1 s per member of the cohort if longer; the first stage, which also materialises the cohort, 0.25 s per member)', numberOption('--stage-timeout', 0.1, 3600))
    .option('--dashboard <host:port>', 'serve the coordinator\'s web dashboard at http://HOST:PORT/ during the run (loopback only, e.g. 127.0.0.1:8080)', dashboardListen)
    .option('--dashboard-linger <seconds>', 'with --dashboard: keep serving it this long after the run ends', numberOption('--dashboard-linger', 0, 86_400), 0)
    .option('--out <dir>', 'directory for the ledgers (default: a new temporary directory)')
    .option('--task <task>', 'text (fine-tune on SOTU text) or qa (instruction tuning on SOTU facts with per-round federated MCQ accuracy; defaults then --rounds 8 --local-steps 15 --batch-size 16 --lr 5e-3)', 'text')
    .option('--workers <n>', 'local training in N worker processes (default: one per core; 0: in this process; task text without DP-SGD)', intOption('--workers', 0, 1024))
    .option('--seed <s>', 'seed of the initial adapter and the clients\' batch order', 'fedlora')
    .addOption(new Option('--log-level <level>', 'JSON log level on stderr').choices(['debug', 'info', 'warn', 'error', 'silent']).default('warn'))
    .option('--json', 'print one JSON document on stdout')
    .action(async (opts, cmd: Command) => {
      // --task qa has its own defaults (measured: README "Instruction tuning and evaluation"); flags given still win.
      const given = opts.task === 'qa' ? { ...opts, ...Object.fromEntries(Object.entries(QA_DEFAULTS).filter(([k]) => cmd.getOptionValueSource(k) === 'default')) } : opts;
      // With a DP-SGD budget, the training defaults are the DP ones (dp-defaults.ts) unless given on the command line.
      let o = given;
      if (given.dpSgdEpsilon !== undefined) {
        const flag = { batchSize: 'batchSize', localSteps: 'localSteps', learningRate: 'lr', maxSequencesPerUnit: 'dpSgdMaxSequences', stageTimeout: 'stageTimeout' } as const;
        const d = applyDpSgdDefaults(
          { batchSize: given.batchSize, localSteps: given.localSteps, learningRate: given.lr, maxSequencesPerUnit: given.dpSgdMaxSequences, stageTimeout: given.stageTimeout },
          (k) => given[flag[k]] !== undefined && cmd.getOptionValueSource(flag[k]) !== 'default',
        );
        o = { ...given, batchSize: d.options.batchSize, localSteps: d.options.localSteps, lr: d.options.learningRate, dpSgdMaxSequences: d.options.maxSequencesPerUnit, stageTimeout: d.options.stageTimeout };
        if (d.applied) info(`DP-SGD defaults (README, Privacy: ${dpSgdDefaultsFlags()}); applied: ${d.applied}`);
      }
      if (o.dpEpsilon !== undefined && o.dpMode !== 'central') throw new CliError(`--dp-epsilon calibrates --dp-mode central; received --dp-mode ${o.dpMode ?? '(none)'}: give --dp-noise-multiplier for distributed noise`);
      if (o.dpEpsilon !== undefined && o.dpNoiseMultiplier !== undefined) throw new CliError('--dp-epsilon calibrates the noise multiplier: give it or --dp-noise-multiplier, not both');
      if (o.dpEpsilon !== undefined && o.dpAdaptiveClip) throw new CliError('--dp-epsilon does not calibrate adaptive clipping yet: give --dp-noise-multiplier with --dp-adaptive-clip');
      const dpCalibration =
        o.dpEpsilon !== undefined
          ? calibrateDpFedAvg({ targetEpsilon: o.dpEpsilon, delta: o.delta, institutions: o.clients, rounds: o.rounds, config: { mode: 'central', clipNorm: o.dpClip, samplingRate: 1, secureAggregation: !!o.secagg }, dimension: 1 })
          : undefined;
      if (o.dpAdaptiveClip && !o.dpMode) throw new CliError('--dp-adaptive-clip needs --dp-mode central (without --secagg) or --dp-mode distributed (with --secagg), received no --dp-mode');
      const progress = o.json ? undefined : createProgressDisplay(o.rounds);
      const workers = simulateWorkers(o);
      const report = await runSimulation({
        clients: o.clients,
        rounds: o.rounds,
        localSteps: o.localSteps,
        batchSize: o.batchSize,
        learningRate: o.lr,
        seqLen: o.seqLen,
        charsPerClient: o.charsPerClient,
        evalSequences: o.evalSequences,
        evalFraction: 0.1,
        minClients: o.minClients,
        partition: o.partition,
        ...(o.clientsPerRound !== undefined ? { clientsPerRound: o.clientsPerRound, sampling: o.sampling } : {}),
        roundDeadlineMs: (o.deadline ?? scaledDefault(600, 1.5, o)) * 1000,
        strategy: { name: o.strategy, serverLearningRate: o.serverLr },
        proximalMu: o.proximalMu,
        lora: o.loraR ? { r: o.loraR, alpha: 2 * o.loraR } : undefined,
        loraVariant: o.loraVariant,
        modelDir: o.model,
        backend: o.backend,
        seed: o.seed,
        silentClients: o.silentClients,
        ...(workers ? { workers } : {}),
        ...(o.task === 'qa' ? { task: 'qa' as const } : o.task !== 'text' ? badTask(o.task) : {}),
        privacy: o.dpMode
          ? {
              mode: o.dpMode,
              clipNorm: o.dpClip,
              noiseMultiplier: dpCalibration?.noiseMultiplier ?? o.dpNoiseMultiplier ?? 1,
              ...(dpCalibration ? { calibration: dpCalibration } : {}),
              delta: o.delta,
              clientEpsilon: o.clientEpsilon,
              ...(o.dpAdaptiveClip ? { adaptiveClipping: { targetQuantile: o.dpAdaptiveQuantile, learningRate: o.dpAdaptiveLr, bitNoiseStd: o.dpAdaptiveBitNoise } } : {}),
            }
          : undefined,
        dpSgd:
          o.dpSgdClip !== undefined || o.dpSgdEpsilon !== undefined || o.dpSgdNoiseMultiplier !== undefined
            ? {
                ...(o.dpSgdClip !== undefined ? { clipNorm: o.dpSgdClip } : {}),
                // Budget first: with --dp-sgd-epsilon and no multiplier, each client calibrates one.
                ...(o.dpSgdNoiseMultiplier !== undefined ? { noiseMultiplier: o.dpSgdNoiseMultiplier } : o.dpSgdEpsilon === undefined ? { noiseMultiplier: 1 } : {}),
                ...(o.dpSgdEpsilon !== undefined ? { epsilon: o.dpSgdEpsilon } : {}),
                delta: o.delta,
                ...(o.dpSgdUnit !== 'document' ? { privacyUnit: o.dpSgdUnit } : {}),
                ...(o.dpSgdMaxSequences !== undefined ? { maxSequencesPerUnit: o.dpSgdMaxSequences } : {}),
              }
            : undefined,
        outDir: o.out,
        // A stage waits its whole deadline for a member that vanished: later stages get 0.1 s per member (protocol work), the
        // first 0.25 s (it also builds the cohort), so that 10% dropping at every stage still fits the round deadline.
        secagg: o.secagg
          ? { dropout: o.dropout, clipNorm: o.dpMode ? o.dpClip : o.secaggClip, stageTimeoutMs: (o.stageTimeout ?? scaledDefault(10, 0.1, o)) * 1000, advertiseTimeoutMs: (o.stageTimeout ?? scaledDefault(10, 0.25, o)) * 1000 }
          : undefined,
        logger: createEventLogger(o.logLevel as LogLevel, { component: 'simulate' }),
        dashboard: o.dashboard
          ? {
              listen: o.dashboard,
              lingerMs: o.dashboardLinger * 1000,
              onListening: (url) => info(`dashboard: ${url}${o.dashboardLinger > 0 ? ` (kept up ${o.dashboardLinger} s after the run)` : ''}`),
            }
          : undefined,
        onProgress: progress,
      });
      if (o.json) return printJson(report);
      process.stdout.write(
        `\n${formatTable(
          ['round', 'status', 'participants', 'trainLoss', 'evalLoss', 'epsilon', 'clip', 'recordEps', report.rounds.some((r) => r.aggregationError !== undefined) ? 'aggErr' : 'secAggMaxErr', 'seconds'],
          report.rounds.map((r) => [
            r.round,
            r.status,
            r.participants,
            r.trainLoss ?? '-',
            r.evalLoss ?? '-',
            r.epsilon ?? '-',
            r.clipNorm ?? '-',
            r.recordEpsilon ?? '-',
            r.aggregationError ?? r.aggregateMaxAbsError ?? '-',
            (r.durationMs / 1000).toFixed(1),
          ]),
        )}\n\neval loss ${report.initialEvalLoss.toFixed(4)} before training -> ${report.finalEvalLoss?.toFixed(4) ?? '-'} after ${report.rounds.length} rounds (backend ${report.backend}, ${(report.durationMs / 1000).toFixed(0)} s)\n`,
      );
      if (report.task === 'qa') {
        const acc = report.rounds.filter((r) => r.evaluation?.acc !== undefined).map((r) => `round ${r.round}: ${r.evaluation!.acc!.toFixed(3)}`);
        process.stdout.write(
          `\nfederated MCQ accuracy of the global adapter each round started from (clients' held-out questions, two balanced choices: chance 0.5): ${acc.join(', ') || '-'}` +
            `\nfinal adapter: acc ${report.finalEvaluation?.acc.toFixed(3) ?? '-'}, acc_norm ${report.finalEvaluation?.accNorm.toFixed(3) ?? '-'} over ${report.finalEvaluation?.count ?? 0} questions; eval loss is ${report.evalLossOf}\n`,
        );
      }
      if (report.privacy) {
        // What the noise does to utility: its norm on the averaged update against the clip (the largest signal).
        const n = report.clients.length;
        const perCoord = report.privacy.mode === 'distributed' ? report.privacy.noiseMultiplier * report.privacy.clipNorm / n : report.privacy.noiseMultiplier * report.privacy.clipNorm / n;
        const noiseNorm = perCoord * Math.sqrt(report.updateParameters);
        process.stdout.write(
          `\nDP noise on the averaged update: about ${noiseNorm.toPrecision(3)} in L2 norm (${report.updateParameters} values per update), against at most ${report.privacy.clipNorm} of signal per update.` +
            (noiseNorm > report.privacy.clipNorm
              ? `\nWith ${n} institutions the noise outweighs the updates; DP-FedAvg needs cohorts of hundreds to thousands (McMahan et al. 2018) or fewer trainable parameters for useful models at this epsilon.\n`
              : '\n'),
        );
      }
      if (report.ledgers?.length) {
        const audit = auditLedgers(report.ledgers, report.trustedKeys ? { trustedKeys: readTrustedKeys(report.trustedKeys) } : {});
        process.stdout.write(`\nprivacy audit of ${report.ledgers.length} ledgers (fedlora audit ${report.ledgers.join(' ')}${report.trustedKeys ? ` --trusted-keys ${report.trustedKeys}` : ''}):\n${formatAuditText(audit)}`);
        if (!audit.valid) throw new CliError('the privacy audit of this simulation failed');
      }
      if (report.finalEvalLoss === null) throw new CliError('no round completed');
    });
}

/** `--workers`: explicit, or one per core (at most one per client) where the simulation can train in workers; 0 or none: in this process. */
function simulateWorkers(o: { workers?: number; clients: number; task: string; dpSgdClip?: number; dpSgdEpsilon?: number; dpSgdNoiseMultiplier?: number }): number {
  const why = workersUnsupported({ task: o.task === 'qa' ? 'qa' : 'text', dpSgd: o.dpSgdClip ?? o.dpSgdEpsilon ?? o.dpSgdNoiseMultiplier });
  if (o.workers === undefined) return why ? 0 : Math.min(defaultWorkers(), o.clients);
  if (o.workers > 0 && why) throw new CliError(`--workers ${o.workers}: ${why}; use --workers 0`);
  return o.workers;
}

/** What `--task qa` uses unless the flag is given: enough steps past the plateau of the first ~60 (see sotu-qa.ts). */
const QA_DEFAULTS = { rounds: 8, localSteps: 15, batchSize: 16, lr: 5e-3 } as const;

/**
 * A deadline default that grows with the cohort: a simulation materialises the cohort when it is
 * drawn and trains it in one machine's processes, so a thousand take longer to arrive and finish
 * than ten (seconds: `base`, or `perMember` x cohort if longer).
 */
function scaledDefault(base: number, perMember: number, o: { clients: number; clientsPerRound?: number }): number {
  const q = o.clientsPerRound;
  const cohort = q === undefined ? o.clients : Math.min(o.clients, q < 1 ? Math.ceil(q * o.clients) : Math.floor(q));
  return Math.max(base, perMember * cohort);
}

function badTask(task: unknown): never {
  throw new CliError(`--task must be text or qa, received "${String(task)}"`, 2);
}

function samplingOption(v: string): 'uniform' | 'poisson' {
  if (v !== 'uniform' && v !== 'poisson') throw new CliError(`--sampling must be uniform or poisson, received ${JSON.stringify(v)}`);
  return v;
}

function partitionOption(v: string): Partition {
  try {
    return parsePartition(v);
  } catch (err) {
    throw new CliError(`--partition: ${(err as Error).message}`);
  }
}
