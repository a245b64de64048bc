/**
 * Search snippets arrive HTML-escaped with <mark>…</mark> around matches (docs/search.md). They
 * are split into plain and marked pieces of *text*: the marks are the only markup recognised,
 * the five escapes are decoded, and whatever else looks like a tag stays literal text.
 */

export type SnippetPart = { readonly text: string; readonly marked: boolean }

const ENTITIES: Readonly<Record<string, string>> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&#39;": "'",
  "&#x27;": "'",
}

function decodeEntities(text: string): string {
  return text.replace(/&(?:amp|lt|gt|quot|#39|#x27);/g, (e) => ENTITIES[e] ?? e)
}

export function parseSnippet(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = []
  const re = /<mark>([\s\S]*?)<\/mark>/g
  let at = 0
  for (let m = re.exec(snippet); m !== null; m = re.exec(snippet)) {
    if (m.index > at) parts.push({ text: decodeEntities(snippet.slice(at, m.index)), marked: false })
    parts.push({ text: decodeEntities(m[1] ?? ""), marked: true })
    at = m.index + m[0].length
  }
  if (at < snippet.length) parts.push({ text: decodeEntities(snippet.slice(at)), marked: false })
  return parts.filter((p) => p.text !== "")
}
