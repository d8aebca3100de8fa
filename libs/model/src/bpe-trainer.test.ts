import { describe, expect, it } from 'vitest';
import { bytesToUnicode, trainByteLevelBpe } from './bpe-trainer.js';
import { fromJson } from './tokenizer.js';

const TEXT = 'Call me Ishmael. Some years ago - never mind how long precisely - having little or no money in my purse. '.repeat(20);

describe('byte-level BPE trainer', () => {
  it('maps all 256 bytes to distinct printable characters like GPT-2', () => {
    const m = bytesToUnicode();
    expect(new Set(m).size).toBe(256);
    expect(m[32]).toBe('Ġ');
    expect(m[65]).toBe('A');
  });

  it('produces a tokenizer.json that @huggingface/tokenizers loads and that round-trips text', () => {
    const { tokenizer, config } = trainByteLevelBpe(TEXT, { vocabSize: 300 });
    const tok = fromJson(tokenizer, config);
    expect(tok.vocabSize).toBe(300);
    const s = 'Some money, Ishmael! héllo 42';
    const ids = tok.encode(s);
    expect(tok.decode(ids)).toBe(s);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(s).length);
    expect(tok.eosTokenId).toBe(299);
  });
});
