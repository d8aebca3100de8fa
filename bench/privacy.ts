/**
 * `bench/privacy.ts`: the cost of exact privacy noise and accounting, measured in one process.
 * Prints ONE JSON document on stdout; progress goes to stderr. About 30 s on 2 shared cores.
 *
 *   npx tsx bench/privacy.ts [--quick]
 *
 * - samplers: draws/s of the exact discrete Gaussian (CKS 2020), exact Skellam at small to
 *   secure-aggregation-scale variances, and the grid Gaussian used for float values, against a
 *   Box-Muller float Gaussian from the same CSPRNG (NOT private: Mironov 2012) as the baseline;
 *   plus the projected time for one client's Skellam share of a 1e5-coordinate LoRA update.
 * - accountant: time for the Opacus test case (2250 sampled-Gaussian steps, 7.3291) and for
 *   calibrating the noise multiplier to epsilon 8.
 * - ghostNorms: per-example gradient norms of a LoRA layer (d 768 -> 768, r 8, seq 128, batch 4)
 *   by `loraPerExampleGradNormsSq` against materialising each example's dA and dB. For LoRA the
 *   per-example factor gradients are small (r (dIn + dOut) values), so the function picks the
 *   direct route unless T^2 (p + q) < T p q, i.e. only for very short sequences.
 * - dpSgdOverhead: the privacy work of one DP-SGD step on a GPT-2-small-like LoRA set (24 adapters):
 *   per-example norms plus clipping and exact noise, as tokens/s of that overhead alone. The full
 *   DP-SGD vs non-private training comparison needs the trainer's per-example path (libs/train).
 * - gridNoise: one DP-SGD step's noise for the tiny model's 24 576 LoRA values (the grid Gaussian,
 *   sigma 2^16 grid steps), `gaussianOnGrid` against `gaussianOnGridReference` (the same algorithm
 *   with BigInt coins, as first written) in the same process, alternating, median and minimum of
 *   wall and CPU milliseconds; `sameValues` checks both return the same draws from the same bytes.
 */
import { cryptoRandomBytes, seededRandomBytes, uniform01, type RandomBytes } from '@fedlora/tensor';
import { calibrateNoise, epsilonOf, gaussianOnGrid, gaussianOnGridReference, loraPerExampleGradNormsSq, privatizeGradients, sampleDiscreteGaussian, sampleSkellam } from '@fedlora/privacy';

const quick = process.argv.includes('--quick');
const log = (m: string): void => void process.stderr.write(`${m}\n`);

function rate(n: number, f: (n: number) => unknown): number {
  const t0 = performance.now();
  f(n);
  return n / ((performance.now() - t0) / 1000);
}

/** cryptoRandomBytes read through a 4 KiB buffer, as the exact samplers read it (fair baseline). */
function bufferedCrypto(): RandomBytes {
  let buf: Uint8Array = new Uint8Array(0);
  let pos = 0;
  return (k) => {
    if (pos + k > buf.length) {
      buf = cryptoRandomBytes(Math.max(4096, k));
      pos = 0;
    }
    pos += k;
    return buf.subarray(pos - k, pos);
  };
}

function boxMuller(n: number): Float64Array {
  const rng = bufferedCrypto();
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - uniform01(rng);
    const v = uniform01(rng);
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

const n = quick ? 20_000 : 100_000;
log('samplers...');
const skellam: Record<string, number> = {};
for (const mu of [10, 1e3, 5e4, 1e6]) skellam[String(mu)] = Math.round(rate(mu >= 5e4 ? n / 10 : n, (k) => sampleSkellam(mu, k, cryptoRandomBytes)));
const samplers = {
  floatGaussianBaselinePerSec: Math.round(rate(n, boxMuller)),
  discreteGaussianPerSec: {
    sigma2_100: Math.round(rate(n, (k) => sampleDiscreteGaussian(100, k, cryptoRandomBytes))),
    sigma2_1e6: Math.round(rate(n, (k) => sampleDiscreteGaussian(1e6, k, cryptoRandomBytes))),
  },
  gaussianOnGridPerSec: Math.round(rate(n, (k) => gaussianOnGrid(1, k, cryptoRandomBytes))),
  skellamPerSecByMu: skellam,
  skellamShareSecondsD1e5Mu5e4: Number((1e5 / skellam['50000']!).toFixed(2)),
};

log('accountant...');
let t0 = performance.now();
const eps = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1.5, samplingRate: 0.04, steps: 2250 }], { delta: 1e-5, orders: 'opacus' }).epsilon;
const epsilonMs = performance.now() - t0;
t0 = performance.now();
const z = calibrateNoise({ targetEpsilon: 8, delta: 1e-5, samplingRate: 0.04, steps: 2250, orders: 'opacus' });
const calibrateMs = performance.now() - t0;

log('ghost norms...');
const dims = { batch: 4, seqLen: quick ? 32 : 128, dIn: 768, dOut: 768, rank: 8, scaling: 2 };
const fill = (len: number): Float32Array => Float32Array.from({ length: len }, () => uniform01(cryptoRandomBytes) - 0.5);
const x = {
  ...dims,
  inputs: fill(dims.batch * dims.seqLen * dims.dIn),
  outputGrads: fill(dims.batch * dims.seqLen * dims.dOut),
  a: fill(dims.rank * dims.dIn),
  b: fill(dims.dOut * dims.rank),
};
t0 = performance.now();
loraPerExampleGradNormsSq(x);
const fastMs = performance.now() - t0;
t0 = performance.now();
// Materialise each example's dA (r x dIn) and dB (dOut x r) and take their norms.
for (let i = 0; i < dims.batch; i++) {
  const dA = new Float64Array(dims.rank * dims.dIn);
  const dB = new Float64Array(dims.dOut * dims.rank);
  for (let t = 0; t < dims.seqLen; t++) {
    const xo = (i * dims.seqLen + t) * dims.dIn;
    const go = (i * dims.seqLen + t) * dims.dOut;
    for (let k = 0; k < dims.rank; k++) {
      let h = 0;
      let p = 0;
      for (let d = 0; d < dims.dIn; d++) h += x.inputs[xo + d]! * x.a[k * dims.dIn + d]!;
      for (let o = 0; o < dims.dOut; o++) p += x.outputGrads[go + o]! * x.b[o * dims.rank + k]!;
      for (let d = 0; d < dims.dIn; d++) dA[k * dims.dIn + d] = dA[k * dims.dIn + d]! + p * x.inputs[xo + d]!;
      for (let o = 0; o < dims.dOut; o++) dB[o * dims.rank + k] = dB[o * dims.rank + k]! + h * x.outputGrads[go + o]!;
    }
  }
}
const bruteMs = performance.now() - t0;

log('DP-SGD privatisation overhead...');
// One DP-SGD step's privacy work for a GPT-2-small-like LoRA set (q and v in 12 layers: 24 adapters,
// 768 -> 768, r 8): per-example squared norms of every adapter, then clipping + exact grid noise on the
// summed gradient (privatizeGradients with per-example gradients of all 24 x 2 x 768 x 8 values).
const adapters = 24;
const perAdapter = 2 * 768 * 8;
t0 = performance.now();
for (let l = 0; l < adapters; l++) loraPerExampleGradNormsSq(x);
const normsMs = performance.now() - t0;
const layout = new Map(Array.from({ length: adapters }, (_, l) => [`lora.${l}`, { shape: [perAdapter], data: new Float32Array(perAdapter) }]));
const perExample = Array.from({ length: dims.batch }, () => new Map(Array.from({ length: adapters }, (_, l) => [`lora.${l}`, { shape: [perAdapter], data: fill(perAdapter) }])));
t0 = performance.now();
privatizeGradients(perExample, layout, { clipNorm: 1, noiseMultiplier: 1, expectedBatchSize: dims.batch, rng: cryptoRandomBytes });
const privatizeMs = performance.now() - t0;
const tokens = dims.batch * dims.seqLen;
const dpSgdOverhead = {
  adapters,
  trainableParams: adapters * perAdapter,
  tokensPerStep: tokens,
  perExampleNormsMs: Number(normsMs.toFixed(1)),
  clipAndNoiseMs: Number(privatizeMs.toFixed(1)),
  overheadTokensPerSec: Math.round(tokens / ((normsMs + privatizeMs) / 1000)),
};

log('grid noise for one DP-SGD step (fast vs reference)...');
const gridValues = 24_576;
const gridReps = quick ? 8 : 30;
const gridTimes = { fast: { wall: [] as number[], cpu: [] as number[] }, reference: { wall: [] as number[], cpu: [] as number[] } };
for (let rep = 0; rep < gridReps; rep++) {
  for (const [name, f] of [['fast', gaussianOnGrid], ['reference', gaussianOnGridReference]] as const) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    f(0.01, gridValues, cryptoRandomBytes);
    const w = performance.now() - w0;
    const c = process.cpuUsage(c0);
    gridTimes[name].wall.push(w);
    gridTimes[name].cpu.push((c.user + c.system) / 1000);
  }
}
const stat = (xs: number[]): { medianMs: number; minMs: number } => {
  const s = [...xs].sort((a, b) => a - b);
  return { medianMs: Number(s[Math.floor(s.length / 2)]!.toFixed(2)), minMs: Number(s[0]!.toFixed(2)) };
};
const gridFast = gaussianOnGrid(0.01, gridValues, seededRandomBytes('bench-same'));
const gridRef = gaussianOnGridReference(0.01, gridValues, seededRandomBytes('bench-same'));
const gridNoise = {
  values: gridValues,
  reps: gridReps,
  fast: { wall: stat(gridTimes.fast.wall), cpu: stat(gridTimes.fast.cpu) },
  reference: { wall: stat(gridTimes.reference.wall), cpu: stat(gridTimes.reference.cpu) },
  cpuSpeedup: Number((stat(gridTimes.reference.cpu).medianMs / stat(gridTimes.fast.cpu).medianMs).toFixed(2)),
  sameValues: gridFast.every((v, i) => v === gridRef[i]),
};

process.stdout.write(
  `${JSON.stringify(
    {
      quick,
      samplers,
      accountant: { opacusCaseEpsilon: eps, epsilonMs: Number(epsilonMs.toFixed(1)), calibratedNoiseMultiplier: z, calibrateMs: Number(calibrateMs.toFixed(1)) },
      ghostNorms: { dims, loraNormsMs: Number(fastMs.toFixed(1)), materialisedMs: Number(bruteMs.toFixed(1)) },
      dpSgdOverhead,
      gridNoise,
    },
    null,
    2,
  )}\n`,
);
