/**
 * Trains a byte-level BPE vocabulary (Sennrich et al. 2016; GPT-2's byte-level variant, Radford
 * et al. 2019) and emits it as a Hugging Face `tokenizer.json`. Only the *training* is ours: the
 * result is loaded back through `@huggingface/tokenizers` like any Hub tokenizer.
 */

/** GPT-2's reversible byte -> printable-unicode map (`bytes_to_unicode` in openai/gpt-2 encoder.py). */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

/** GPT-2's pre-tokenization pattern (the ByteLevel pre-tokenizer with use_regex). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Options of `trainByteLevelBpe`. */
export interface BpeTrainOptions {
  /** Final vocabulary size including the 256 byte tokens and the end-of-text token. */
  vocabSize: number;
  /** Pairs seen fewer times are not merged. */
  minFrequency?: number;
  eosToken?: string;
  modelMaxLength?: number;
}

/** Trains on `text`; returns tokenizer.json and tokenizer_config.json objects. */
export function trainByteLevelBpe(text: string, opts: BpeTrainOptions): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 257) throw new RangeError(`vocabSize must be an integer >= 257, received ${opts.vocabSize}`);
  const eos = opts.eosToken ?? '<|endoftext|>';
  const byteChar = bytesToUnicode();
  const enc = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const m of text.matchAll(GPT2_SPLIT)) {
    const mapped = Array.from(enc.encode(m[0]), (b) => byteChar[b]).join('');
    wordCounts.set(mapped, (wordCounts.get(mapped) ?? 0) + 1);
  }
  const vocab: string[] = [...byteChar];
  const words = [...wordCounts].map(([w, c]) => ({ syms: Array.from(w), count: c }));
  const merges: string[] = [];
  const minFreq = opts.minFrequency ?? 2;
  while (vocab.length < opts.vocabSize - 1) {
    const pairs = new Map<string, number>();
    for (const { syms, count } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = `${syms[i]} ${syms[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best = '';
    let bestCount = 0;
    for (const [k, c] of pairs) if (c > bestCount || (c === bestCount && k < best)) [best, bestCount] = [k, c];
    if (bestCount < minFreq) break;
    const [l, r] = best.split(' ') as [string, string];
    const merged = l + r;
    merges.push(best);
    vocab.push(merged);
    for (const w of words) {
      const s = w.syms;
      if (s.length < 2) continue;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === l && s[i + 1] === r) {
          out.push(merged);
          i++;
        } else out.push(s[i]!);
      }
      w.syms = out;
    }
  }
  const vocabObj: Record<string, number> = {};
  vocab.forEach((t, i) => (vocabObj[t] = i));
  const eosId = vocab.length;
  vocabObj[eos] = eosId;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eosId, content: eos, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabObj,
      merges,
    },
  };
  const config = {
    tokenizer_class: 'GPT2Tokenizer',
    add_prefix_space: false,
    bos_token: eos,
    eos_token: eos,
    unk_token: eos,
    model_max_length: opts.modelMaxLength ?? 1024,
    clean_up_tokenization_spaces: false,
  };
  return { tokenizer, config };
}
