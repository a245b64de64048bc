/**
 * Cove's search tokenizer: pure, no I/O, and the same code turns a message into index tokens and
 * a query into search terms, so both sides always agree (docs/search.md gives the rules).
 *
 * - Each character (with the combining marks that follow it) is normalised with NFKC and case
 *   folded, so full-width `ＡＢＣ`, `ABC` and `abc` are one word, and `㍿` is `株式会社`.
 * - Letters, digits and marks of other scripts (Latin, Cyrillic, Greek, ...) form words.
 * - Han, kana and hangul (CJK) form runs: every character is a unigram and every adjacent pair a
 *   bigram at the first character's position, so any substring of a run can be found as a chain
 *   of adjacent bigrams (or one unigram).
 * - Everything else separates tokens: spaces, punctuation, symbols and emoji (with their
 *   selectors, keycaps, skin tones and joiners).
 * Positions count words and CJK characters from 1, continuously across scripts, so "用Python"
 * is 用 then python at the next position.
 */

/** Where a token came from in the original text, in UTF-16 code units, end exclusive. */
export type Span = { readonly start: number; readonly end: number }

export type WordSegment = Span & { readonly kind: "word"; readonly lexeme: string; readonly pos: number }
export type CjkChar = Span & { readonly char: string; readonly pos: number }
export type CjkSegment = { readonly kind: "cjk"; readonly chars: readonly CjkChar[] }
export type Segment = WordSegment | CjkSegment

/** One index token: a word, a CJK unigram or a CJK bigram (at its first character's position). */
export type Token = Span & { readonly lexeme: string; readonly pos: number }

/** Longest word kept, in code points: longer words are cut (on both sides, so they still match). */
const MAX_WORD_CHARS = 64
/** PostgreSQL's highest tsvector position; later ones are clamped to it. */
const MAX_POSITION = 16_383

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u30fc]/u
const WORD = /[\p{L}\p{N}\p{M}]/u
const MARK = /\p{M}/u
// A unit carrying an emoji presentation selector or a keycap is an emoji (`1️⃣`, `ℹ️`).
const EMOJI_PARTS = /[\ufe0f\u20e3]/

type Folded = { readonly text: string; readonly start: number; readonly end: number }

/** Case folding beyond toLowerCase: the few one-to-many and contextual mappings that matter. */
function fold(unit: string): string {
  if (EMOJI_PARTS.test(unit)) return ""
  const lower = unit.normalize("NFKC").toLowerCase()
  return lower.replace(/ß/g, "ss").replace(/ς/g, "σ")
}

/** The text as normalised, folded units, each with the span of original text it came from. */
function units(text: string): Folded[] {
  const out: Folded[] = []
  let i = 0
  while (i < text.length) {
    const start = i
    const code = text.codePointAt(i) as number
    i += code > 0xffff ? 2 : 1
    // Combining marks belong to the character before them (NFKC composes them together).
    while (i < text.length) {
      const next = text.codePointAt(i) as number
      const ch = String.fromCodePoint(next)
      if (!MARK.test(ch)) break
      i += ch.length
    }
    const raw = text.slice(start, i)
    const plainAscii = i - start === 1 && code < 0x80
    out.push({ text: plainAscii ? raw.toLowerCase() : fold(raw), start, end: i })
  }
  return out
}

/**
 * Splits text into words and CJK runs with positions and original spans. The positions are
 * what the index stores; the spans let a snippet mark the original text.
 */
function segment(text: string): Segment[] {
  const segments: Segment[] = []
  let pos = 1
  let word: { chars: string[]; start: number; end: number } | undefined
  let cjk: CjkChar[] | undefined
  const flushWord = () => {
    if (word === undefined) return
    const lexeme = word.chars.slice(0, MAX_WORD_CHARS).join("")
    segments.push({
      kind: "word",
      lexeme,
      pos: Math.min(pos, MAX_POSITION),
      start: word.start,
      end: word.end,
    })
    pos++
    word = undefined
  }
  const flushCjk = () => {
    if (cjk === undefined) return
    segments.push({ kind: "cjk", chars: cjk })
    cjk = undefined
  }
  for (const unit of units(text)) {
    for (const char of unit.text) {
      if (CJK.test(char)) {
        flushWord()
        cjk ??= []
        cjk.push({ char, pos: Math.min(pos, MAX_POSITION), start: unit.start, end: unit.end })
        pos++
      } else if (WORD.test(char)) {
        flushCjk()
        if (word === undefined) word = { chars: [char], start: unit.start, end: unit.end }
        else {
          word.chars.push(char)
          word.end = unit.end
        }
      } else {
        flushWord()
        flushCjk()
      }
    }
  }
  flushWord()
  flushCjk()
  return segments
}

/** The index tokens of a text: words, and for CJK runs every unigram and every bigram. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  for (const s of segment(text)) {
    if (s.kind === "word") {
      tokens.push({ lexeme: s.lexeme, pos: s.pos, start: s.start, end: s.end })
      continue
    }
    s.chars.forEach((c, i) => {
      tokens.push({ lexeme: c.char, pos: c.pos, start: c.start, end: c.end })
      const next = s.chars[i + 1]
      if (next !== undefined)
        tokens.push({ lexeme: c.char + next.char, pos: c.pos, start: c.start, end: next.end })
    })
  }
  return tokens
}

/** One token of a query term: its lexeme, its offset from the term's first token, prefix or not. */
export type TermToken = { readonly lexeme: string; readonly offset: number; readonly prefix: boolean }
/** A query term: its tokens must appear at exactly these offsets from each other (a phrase). */
export type Term = readonly TermToken[]

/**
 * Words shorter than this match exactly (a 3-letter prefix such as `the` gathers thousands of
 * words); longer ones also match as prefixes when they end a term.
 */
const PREFIX_MIN_CHARS = 4

/**
 * A query is terms separated by white space; every term must match (AND). Within a term the
 * tokens form a phrase: a CJK run of two or more characters is its chain of adjacent bigrams,
 * a single CJK character its unigram, and words and CJK runs follow each other at their
 * positions. A term's last token, if it is a word of 4 or more letters (not all digits), also
 * matches longer words that start with it: `deploy` finds `deployment`.
 */
export function queryTerms(query: string): Term[] {
  const terms: Term[] = []
  const seen = new Set<string>()
  for (const piece of query.split(/\s+/u)) {
    const tokens: { lexeme: string; pos: number; word: boolean }[] = []
    for (const s of segment(piece)) {
      if (s.kind === "word") tokens.push({ lexeme: s.lexeme, pos: s.pos, word: true })
      else if (s.chars.length === 1) {
        const only = s.chars[0] as CjkChar
        tokens.push({ lexeme: only.char, pos: only.pos, word: false })
      } else
        for (let i = 0; i + 1 < s.chars.length; i++) {
          const c = s.chars[i] as CjkChar
          tokens.push({ lexeme: c.char + (s.chars[i + 1] as CjkChar).char, pos: c.pos, word: false })
        }
    }
    const first = tokens[0]
    if (first === undefined) continue
    const term = tokens.map((t, i) => ({
      lexeme: t.lexeme,
      offset: t.pos - first.pos,
      prefix:
        i === tokens.length - 1 &&
        t.word &&
        [...t.lexeme].length >= PREFIX_MIN_CHARS &&
        [...t.lexeme].length < MAX_WORD_CHARS &&
        !/^\p{N}+$/u.test(t.lexeme),
    }))
    const key = JSON.stringify(term)
    if (seen.has(key)) continue
    seen.add(key)
    terms.push(term)
  }
  return terms
}
