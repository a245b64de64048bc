/**
 * Turns tokens into PostgreSQL `tsvector` and `tsquery` values. They are built here as text in
 * the types' input syntax, every lexeme quoted, and reach SQL only as bound parameters cast with
 * `::tsvector` / `::tsquery` (no parser or dictionary runs on them, so they stay exactly as the
 * tokenizer made them).
 */
import { type Term, type Token, tokenize } from "./tokenize"

/** PostgreSQL keeps at most 256 positions per lexeme; we keep the first 255, deterministically. */
const MAX_POSITIONS_PER_LEXEME = 255

/** A field of a message and its weight in ranking (A is the highest). */
export type Field = { readonly text: string; readonly weight: "A" | "B" | "C" | "D" }

/** Lexemes are quoted; inside quotes a quote is doubled and a backslash escaped. */
function quoteLexeme(lexeme: string): string {
  return `'${lexeme.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`
}

/**
 * The lexeme that says which conversation a document belongs to. The tokenizer never makes a
 * lexeme with `~` (punctuation separates tokens), so it cannot collide with a word. Queries
 * OR the caller's conversations into the GIN search: the index itself drops other
 * conversations' documents, even for a word that is in every second message.
 */
function conversationLexeme(conversationId: string): string {
  return `~c:${conversationId}`
}

/**
 * The `tsvector` text of a message: its fields' tokens with positions and weights (fields one
 * position apart, so no phrase spans two fields), plus its conversation lexeme.
 */
export function documentVector(conversationId: string, fields: readonly Field[]): string {
  const positions = new Map<string, string[]>()
  let base = 0
  for (const field of fields) {
    let last = 0
    for (const token of tokenize(field.text)) {
      const pos = Math.min(base + token.pos, 16_383)
      last = Math.max(last, pos)
      const list = positions.get(token.lexeme)
      const entry = `${pos}${field.weight === "D" ? "" : field.weight}`
      if (list === undefined) positions.set(token.lexeme, [entry])
      else if (list.length < MAX_POSITIONS_PER_LEXEME && list.at(-1) !== entry) list.push(entry)
    }
    base = last + 1
  }
  const parts = [quoteLexeme(conversationLexeme(conversationId))]
  for (const [lexeme, list] of positions) parts.push(`${quoteLexeme(lexeme)}:${list.join(",")}`)
  return parts.join(" ")
}

function termQuery(term: Term): string {
  let out = ""
  let previous = 0
  for (const [i, token] of term.entries()) {
    const lexeme = `${quoteLexeme(token.lexeme)}${token.prefix ? ":*" : ""}`
    out = i === 0 ? lexeme : `${out} <${token.offset - previous}> ${lexeme}`
    previous = token.offset
  }
  return term.length > 1 ? `(${out})` : out
}

/** The `tsquery` text of the terms: every term (AND), each term a phrase of its tokens. */
export function termsQuery(terms: readonly Term[]): string {
  return terms.map(termQuery).join(" & ")
}

/**
 * The lexeme of the month (UTC) a message was sent in, `~m:YYYYMM`; the index adds it to every
 * vector (lib/adapters/pg-search.ts), so a search can look at recent months first.
 */
function monthLexeme(month: string): string {
  return `~m:${month}`
}

/** `YYYYMM` of a time, in UTC, moved by `delta` months. */
export function monthOf(date: Date, delta = 0): string {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + delta, 1))
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}`
}

/** The first instant of a `YYYYMM` month, in UTC. */
export function monthStart(month: string): Date {
  return new Date(Date.UTC(Number(month.slice(0, 4)), Number(month.slice(4, 6)) - 1, 1))
}

/** The `tsquery` text that matches any document sent in these months. */
export function monthsQuery(months: readonly string[]): string {
  return months.map((m) => quoteLexeme(monthLexeme(m))).join(" | ")
}

/** The `tsquery` text that matches any document of these conversations. */
export function scopeQuery(conversationIds: readonly string[]): string {
  return conversationIds.map((c) => quoteLexeme(conversationLexeme(c))).join(" | ")
}

/**
 * Where each term matches in the tokens, as spans of the original text: the same rules as the
 * `tsquery` (a phrase's tokens at their offsets; a prefix token matches longer words).
 */
export function matchSpans(
  tokens: readonly Token[],
  terms: readonly Term[],
): Array<{ start: number; end: number }> {
  const byPos = new Map<number, Token[]>()
  for (const t of tokens) {
    const list = byPos.get(t.pos)
    if (list === undefined) byPos.set(t.pos, [t])
    else list.push(t)
  }
  const find = (pos: number, want: Term[number]) =>
    byPos.get(pos)?.find((t) => (want.prefix ? t.lexeme.startsWith(want.lexeme) : t.lexeme === want.lexeme))
  const spans: Array<{ start: number; end: number }> = []
  for (const term of terms) {
    const first = term[0]
    if (first === undefined) continue
    for (const t of tokens) {
      if (find(t.pos, first) !== t) continue
      const found: Token[] = [t]
      for (const want of term.slice(1)) {
        const next = find(t.pos + want.offset, want)
        if (next === undefined) break
        found.push(next)
      }
      if (found.length !== term.length) continue
      for (const f of found) spans.push({ start: f.start, end: f.end })
    }
  }
  return spans
}
