// A character-level tokenizer: one id per distinct character (Unicode code point) of a text.
import { describe, fail } from '../errors';

export interface CharTokenizerJSON {
  type: 'char';
  /** The vocabulary, id order. */
  chars: string[];
}

export class CharTokenizer {
  readonly chars: readonly string[];
  private readonly ids: Map<string, number>;

  /** The vocabulary of `text` (sorted code points), or an explicit list of characters. */
  constructor(textOrChars: string | readonly string[]) {
    let chars: string[];
    if (typeof textOrChars === 'string') chars = [...new Set(Array.from(textOrChars))].sort();
    else if (Array.isArray(textOrChars)) chars = textOrChars.slice();
    else chars = fail('INVALID_ARGUMENT', `CharTokenizer: expected a text or a list of characters, got ${describe(textOrChars)}`);
    if (chars.length === 0) fail('INVALID_ARGUMENT', 'CharTokenizer: the vocabulary is empty');
    this.ids = new Map();
    chars.forEach((c, i) => {
      if (typeof c !== 'string' || Array.from(c).length !== 1) fail('INVALID_ARGUMENT', `CharTokenizer: entry ${i} is ${describe(c)}, expected one character`);
      if (this.ids.has(c)) fail('INVALID_ARGUMENT', `CharTokenizer: ${describe(c)} appears twice in the vocabulary`);
      this.ids.set(c, i);
    });
    this.chars = chars;
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  /** Ids of the characters of text; a character outside the vocabulary is an error, or skipped with {unknown: 'skip'}. */
  encode(text: string, options: { unknown?: 'error' | 'skip' } = {}): Int32Array {
    if (typeof text !== 'string') fail('INVALID_ARGUMENT', `encode: expected a string, got ${describe(text)}`);
    const out = new Int32Array(text.length);
    let n = 0;
    for (const c of text) {
      const id = this.ids.get(c);
      if (id === undefined) {
        if (options.unknown === 'skip') continue;
        fail('INVALID_ARGUMENT', `encode: the character ${JSON.stringify(c)} is not in the vocabulary`);
      }
      out[n++] = id;
    }
    return out.slice(0, n);
  }

  decode(ids: ArrayLike<number> | Iterable<number>): string {
    let s = '';
    for (const id of Array.from(ids as ArrayLike<number>)) {
      const c = this.chars[id];
      if (c === undefined) fail('INVALID_ARGUMENT', `decode: id ${describe(id)} is out of range for a vocabulary of ${this.chars.length}`);
      s += c;
    }
    return s;
  }

  toJSON(): CharTokenizerJSON {
    return { type: 'char', chars: this.chars.slice() };
  }

  static fromJSON(json: unknown): CharTokenizer {
    const j = json as Partial<CharTokenizerJSON> | null;
    if (!j || j.type !== 'char' || !Array.isArray(j.chars)) fail('INVALID_ARGUMENT', `CharTokenizer.fromJSON: expected {type: 'char', chars: [...]}, got ${describe(json)}`);
    return new CharTokenizer(j.chars);
  }
}
