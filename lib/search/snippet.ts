/**
 * The highlighted snippet of a hit: a window of the message around its first match, HTML-escaped,
 * with `<mark>` around the original text of every matched token.
 */
import { type Term, tokenize } from "./tokenize"
import { matchSpans } from "./tsearch"

/** Characters of context kept before the first match. */
const LEAD = 30

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

/** Moves an index off the second half of a surrogate pair, so no character is cut in two. */
function safeIndex(text: string, i: number): number {
  const code = text.charCodeAt(i)
  return i > 0 && i < text.length && code >= 0xdc00 && code <= 0xdfff ? i - 1 : i
}

export function snippet(text: string, terms: readonly Term[], maxChars = 160): string {
  const spans = matchSpans(tokenize(text), terms).sort((a, b) => a.start - b.start || a.end - b.end)
  // Overlapping spans (a CJK chain's bigrams) become one mark.
  const merged: Array<{ start: number; end: number }> = []
  for (const s of spans) {
    const last = merged.at(-1)
    if (last !== undefined && s.start <= last.end) last.end = Math.max(last.end, s.end)
    else merged.push({ ...s })
  }
  const first = merged[0]?.start ?? 0
  let start = safeIndex(text, Math.max(0, first - LEAD))
  const end = safeIndex(text, Math.min(text.length, start + maxChars))
  if (end - start < maxChars) start = safeIndex(text, Math.max(0, end - maxChars))
  let out = start > 0 ? "…" : ""
  let at = start
  for (const m of merged) {
    if (m.end <= start) continue
    if (m.start >= end) break
    const from = Math.max(m.start, start)
    const to = Math.min(m.end, end)
    out += `${escapeHtml(text.slice(at, from))}<mark>${escapeHtml(text.slice(from, to))}</mark>`
    at = to
  }
  out += escapeHtml(text.slice(at, end))
  return end < text.length ? `${out}…` : out
}
