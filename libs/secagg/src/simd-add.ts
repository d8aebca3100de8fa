/**
 * A 128-bit SIMD kernel for the mask hot loop: acc[i] += ks[i] (or -=) modulo 2^32, four lanes
 * at a time (WebAssembly `i32x4.add` / `i32x4.sub`). The JavaScript loop costs about as much as
 * the AES-NI keystream it consumes, so it, not AES, set the masking cost; the SIMD loop plus the
 * copy into WebAssembly memory costs a fraction of it. The module is 120 bytes assembled here by
 * hand (no toolchain, no download); `simdAvailable()` is false where WebAssembly SIMD is not
 * supported and callers fall back to the scalar loop.
 *
 * Memory layout: [0, BLOCK) holds one keystream block, [BLOCK, BLOCK + SEGMENT) a segment of the
 * accumulator. The caller copies a segment in once, adds every mask's keystream into it block by
 * block (term-major, so each AES context runs hot), and copies it out once.
 */

/** Bytes of one keystream block (one 64 KiB page). */
export const SIMD_BLOCK_BYTES = 65_536;
/** Bytes of the accumulator segment kept in WebAssembly memory (1 MiB: stays in L2 cache). */
export const SIMD_SEGMENT_BYTES = 1 << 20;

/** The assembled kernel. */
export type SimdKernel = {
  /** The module memory as bytes. */
  bytes: Uint8Array;
  /** mem[acc + i] += ks[i] for i < nBytes (32-bit lanes; acc an address, nBytes a multiple of 16). */
  add(acc: number, nBytes: number): void;
  /** mem[acc + i] -= ks[i]. */
  sub(acc: number, nBytes: number): void;
};

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

function kernelBody(laneOp: number): number[] {
  // params: 0 = acc address, 1 = byte count; local 2 = byte index i
  const code = [
    0x01, 0x01, 0x7f, // one local i32
    0x02, 0x40, // block
    0x03, 0x40, // loop
    0x20, 0x02, 0x20, 0x01, 0x4f, 0x0d, 0x01, // if (i >= n) break
    0x20, 0x00, 0x20, 0x02, 0x6a, // store address acc + i
    0x20, 0x00, 0x20, 0x02, 0x6a, 0xfd, 0x00, 0x04, 0x00, // v128.load mem[acc + i]
    0x20, 0x02, 0xfd, 0x00, 0x04, 0x00, // v128.load ks[i]
    0xfd, ...leb(laneOp), // i32x4.add / i32x4.sub
    0xfd, 0x0b, 0x04, 0x00, // v128.store
    0x20, 0x02, 0x41, 0x10, 0x6a, 0x21, 0x02, // i += 16
    0x0c, 0x00, // continue
    0x0b, 0x0b, 0x0b, // end loop, block, function
  ];
  return [...leb(code.length), ...code];
}

const name = (s: string) => [s.length, ...Buffer.from(s, 'ascii')];

/** The module's bytes. */
export function simdModuleBytes(): Uint8Array {
  const add = kernelBody(0xae);
  const sub = kernelBody(0xb1);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x00]), // type (i32, i32) -> ()
    ...section(3, [0x02, 0x00, 0x00]), // two functions of type 0
    ...section(5, [0x01, 0x00, ...leb((SIMD_BLOCK_BYTES + SIMD_SEGMENT_BYTES) / 65536)]), // one memory: keystream block + acc segment
    ...section(7, [0x03, ...name('mem'), 0x02, 0x00, ...name('add'), 0x00, 0x00, ...name('sub'), 0x00, 0x01]),
    ...section(10, [0x02, ...add, ...sub]),
  ]);
}

/** The slice of the WebAssembly JS API used here (the project's TypeScript lib has no DOM types). */
type WasmApi = {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
};

let cached: SimdKernel | null | undefined;

/** The kernel, or null where WebAssembly SIMD is unavailable. */
export function simdKernel(): SimdKernel | null {
  if (cached !== undefined) return cached;
  try {
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const instance = new wasm.Instance(new wasm.Module(simdModuleBytes()));
    const ex = instance.exports as { mem: { buffer: ArrayBuffer }; add(acc: number, n: number): void; sub(acc: number, n: number): void };
    cached = { bytes: new Uint8Array(ex.mem.buffer), add: ex.add, sub: ex.sub };
  } catch {
    cached = null;
  }
  return cached;
}

/** True when the SIMD kernel compiled on this runtime. */
export function simdAvailable(): boolean {
  return simdKernel() !== null;
}
