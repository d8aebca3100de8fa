/**
 * Chat templates: the model's own `chat_template` (Jinja, from tokenizer_config.json) rendered with
 * `@huggingface/jinja`, the implementation transformers.js uses, with the variables transformers
 * passes (`messages`, `add_generation_prompt`, `bos_token`, `eos_token`).
 *
 * Which characters are the assistant's (trained) and which are prompt (masked) is found the way
 * TRL's `DataCollatorForCompletionOnlyLM` alternatives do without `{% generation %}` tags: for each
 * assistant turn i, the conversation up to turn i rendered with the generation prompt is a prefix
 * of the conversation including turn i; the characters between the two are the assistant's. A
 * template for which that does not hold (one that rewrites earlier turns) is refused by name.
 */
import { Template } from '@huggingface/jinja';
import type { TextTokenizer } from './tokenizer.js';

/** One message of a conversation (the hub's and OpenAI's chat format). */
export interface ChatMessage {
  role: string;
  content: string;
}

/** A span of rendered text; `train` marks an assistant turn (loss on), otherwise prompt (masked). */
export interface TextSegment {
  text: string;
  train: boolean;
}

/**
 * The bundled model's chat template ("User: ...", "Assistant: ...<eos>"), written into its
 * tokenizer_config.json by `fedlora model pretrain`; any model may be given one the same way.
 */
export const SIMPLE_CHAT_TEMPLATE =
  '{% for message in messages %}{% if message["role"] == "system" %}{{ message["content"] }}\n\n{% elif message["role"] == "user" %}User: {{ message["content"] }}\n{% elif message["role"] == "assistant" %}Assistant: {{ message["content"] }}{{ eos_token }}\n{% else %}{{ raise_exception("roles are system, user and assistant; received " + message["role"]) }}{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}';

const cache = new Map<string, Template>();

function compiled(source: string): Template {
  let t = cache.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (err) {
      throw new SyntaxError(`chat_template: cannot parse the Jinja template (${(err as Error).message})`);
    }
    cache.set(source, t);
  }
  return t;
}

/** Throws a TypeError unless `messages` is a non-empty array of {role, content} strings. */
export function assertChatMessages(messages: unknown, where = 'messages'): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new TypeError(`${where} must be a non-empty array of {role, content}, received ${JSON.stringify(messages)}`);
  messages.forEach((m, i) => {
    const r = m as Partial<ChatMessage> | null;
    if (typeof r?.role !== 'string' || typeof r.content !== 'string') {
      throw new TypeError(`${where}[${i}] must be {role: string, content: string}, received ${JSON.stringify(m)}`);
    }
  });
}

/** Renders `messages` with the tokenizer's chat template (or `template` when given). */
export function renderChat(tokenizer: TextTokenizer, messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; template?: string } = {}): string {
  const source = opts.template ?? tokenizer.chatTemplate;
  if (source === undefined) {
    throw new RangeError('the model has no chat_template: add one to its tokenizer_config.json (a Jinja string over `messages`), or use data.format "prompt-completion"');
  }
  try {
    return compiled(source).render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: tokenizer.bosToken ?? '',
      eos_token: tokenizer.eosToken ?? '',
    });
  } catch (err) {
    throw new RangeError(`chat_template: rendering failed (${(err as Error).message})`);
  }
}

/**
 * The rendered conversation cut into prompt and assistant segments (see the file comment). The
 * segments concatenate to `renderChat(messages)`; at least one assistant message is required.
 */
export function chatSegments(tokenizer: TextTokenizer, messages: ChatMessage[], opts: { template?: string } = {}): TextSegment[] {
  assertChatMessages(messages);
  if (!messages.some((m) => m.role === 'assistant')) throw new RangeError('a conversation needs at least one assistant message to train on, received none');
  const full = renderChat(tokenizer, messages, opts);
  const segments: TextSegment[] = [];
  let at = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = renderChat(tokenizer, messages.slice(0, i), { ...opts, addGenerationPrompt: true });
    const through = renderChat(tokenizer, messages.slice(0, i + 1), opts);
    if (!through.startsWith(before) || !full.startsWith(through) || before.length < at) {
      throw new RangeError(`chat_template: the conversation rendered up to message ${i} is not a prefix of the whole rendering, so the assistant's tokens cannot be located; use a template that renders turns in order`);
    }
    if (before.length > at) segments.push({ text: full.slice(at, before.length), train: false });
    if (through.length > before.length) segments.push({ text: full.slice(before.length, through.length), train: true });
    at = through.length;
  });
  if (full.length > at) segments.push({ text: full.slice(at), train: false });
  return segments;
}
