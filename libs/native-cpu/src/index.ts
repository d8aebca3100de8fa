// Native (N-API + OpenBLAS) kernels for the tfjs cpu backend; optional, with a pure-JS fallback.
/** Status of the native path and how to load it. */
export type { NativeCpuStatus, LoadOptions, NativeAddon } from './native-binding.js';
/** Loads the addon once (never throws) and reports `native-openblas`, `native-loops` or `cpu` with a reason. */
export { loadNativeCpu } from './native-binding.js';
/** The loaded addon's raw functions, or null. */
export { nativeAddon } from './native-binding.js';
/** The tfjs registry functions registerNativeKernels uses (pass the `tf` namespace). */
export type { KernelRegistry } from './kernel-support.js';
/** Replaces the cpu backend's hot kernels with native ones; returns the kernel names. */
export { registerNativeKernels } from './register.js';
/** Restores the pure-JS kernels. */
export { unregisterNativeKernels } from './register.js';
/** Counters of the output-buffer pool that registerNativeKernels enables. */
export { bufferPoolStats } from './buffer-pool.js';
export type { BufferPoolOptions } from './buffer-pool.js';
/** Layer normalisation over the last axis, fused when native kernels are registered. */
export { layerNorm } from './fused-ops.js';
/** Tanh-approximated GELU (GPT-2's gelu_new), fused when native kernels are registered. */
export { geluTanh } from './fused-ops.js';
/** Softmax cross-entropy against int32 labels, without one-hot targets. */
export { sparseSoftmaxCrossEntropy } from './fused-ops.js';
/** A linear layer x w + bias: one native _FusedMatMul (gradients on demand) when native kernels are registered. */
export { linear } from './fused-ops.js';
/** Causal-masked softmax of scaled attention scores, one native pass (masked half skipped) when registered. */
export { causalSoftmax } from './fused-ops.js';
/** Causal attention's products Q K^T and P V that skip the masked upper block triangle natively. */
export { causalApply, causalScores } from './fused-ops.js';
/** Whether the current backend runs the native kernels (callers pick layouts that suit BLAS). */
export { nativeKernelsActive } from './fused-ops.js';
/** One AdamW step per parameter tensor, one native pass when native kernels are registered. */
export { adamwUpdate } from './optim-ops.js';
/** Hyper-parameters of one AdamW step. */
export type { AdamWStep } from './optim-ops.js';
/** Sum of squares of a list of tensors as a host number (global-norm clipping). */
export { sumOfSquares } from './optim-ops.js';
/** Kernel names of the fused ops. */
export { FusedKernelName } from './fused-kernels.js';
/** Host loops of DP-SGD's clipped sum on the noise grid in C, or null without the addon (libs/privacy has the JS ones). */
export { nativeGridSumKernels } from './grid-sum-ops.js';
export type { GridSumKernels } from './grid-sum-ops.js';
