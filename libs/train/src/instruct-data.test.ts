import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BASE_MODEL_DIR, chatSegments, loadTokenizer, type TextTokenizer } from '@fedlora/model';
import { instructSegments, instructTrainingSequences, maskedSequences } from './instruct-data.js';
import { tokenIds, trainedTargets } from './loss-mask.js';

let tok: TextTokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(DEFAULT_BASE_MODEL_DIR);
});

describe('instruction data', () => {
  it('the bundled chat template: every assistant turn is trained, everything else is prompt', () => {
    const segs = chatSegments(tok, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Who is the captain?' },
      { role: 'assistant', content: 'Ahab.' },
      { role: 'user', content: 'And the ship?' },
      { role: 'assistant', content: 'The Pequod.' },
    ]);
    expect(segs).toEqual([
      { text: 'Be brief.\n\nUser: Who is the captain?\nAssistant:', train: false },
      { text: ' Ahab.<|endoftext|>\n', train: true },
      { text: 'User: And the ship?\nAssistant:', train: false },
      { text: ' The Pequod.<|endoftext|>\n', train: true },
    ]);
  });

  it('refuses a conversation without an assistant turn, a model without a template, and a wrong field, by name', () => {
    expect(() => instructSegments(tok, { messages: [{ role: 'user', content: 'hi' }] }, 'messages', 'f.jsonl: record 3')).toThrow(/record 3: .*at least one assistant message/);
    const { chatTemplate: _, ...noTemplate } = tok;
    expect(() => chatSegments(noTemplate as TextTokenizer, [{ role: 'assistant', content: 'x' }])).toThrow(/no chat_template: add one to its tokenizer_config.json/);
    expect(() => instructSegments(tok, { prompt: 'p', completion: 3 }, 'prompt-completion', 'r')).toThrow(/r: field "completion" must be a string, received 3/);
    expect(() => instructSegments(tok, { messages: [{ role: 'user' }] }, 'messages', 'r')).toThrow(/r: messages\[0\] must be \{role: string, content: string\}/);
  });

  it('prompt-completion ends the completion with EOS; Alpaca uses its prompt template', () => {
    expect(instructSegments(tok, { prompt: 'Q: ', completion: 'A' }, 'prompt-completion')).toEqual([
      { text: 'Q: ', train: false },
      { text: 'A<|endoftext|>', train: true },
    ]);
    const [p] = instructSegments(tok, { instruction: 'Name it.', input: 'a ship', output: 'Pequod' }, 'alpaca');
    expect(p!.text).toMatch(/^Below is an instruction that describes a task, paired with an input.*### Instruction:\nName it\.\n\n### Input:\na ship\n\n### Response:\n$/s);
  });

  it('cuts prompts from the left, skips examples whose completion cannot fit, and counts both', () => {
    const long = 'the sea and the ship '.repeat(10);
    const examples = [
      instructSegments(tok, { prompt: 'Call me', completion: ' Ishmael.' }, 'prompt-completion'),
      instructSegments(tok, { prompt: long, completion: ' Ishmael.' }, 'prompt-completion'),
      instructSegments(tok, { prompt: 'x', completion: long }, 'prompt-completion'),
      instructSegments(tok, { prompt: 'x', completion: '' }, 'prompt-completion'), // only EOS: still one target
    ];
    const completion = tok.encode(' Ishmael.<|endoftext|>');
    const r = maskedSequences(tok, examples, 20);
    expect(r).toMatchObject({ truncated: 1, skipped: 1 });
    expect(r.sequences).toHaveLength(3);
    expect(r.sequences[1]).toHaveLength(20);
    expect(Array.from(tokenIds(r.sequences[1]!)).slice(-completion.length)).toEqual(completion);
    expect(trainedTargets(r.sequences[1]!)).toBe(completion.length);
    const padded = instructTrainingSequences(tok, examples, 19);
    expect(new Set(padded.sequences.map((s) => s.length))).toEqual(new Set([20]));
    expect(padded.sequences.map(trainedTargets)).toEqual(r.sequences.map(trainedTargets)); // padding is masked
  });
});
