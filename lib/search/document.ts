/**
 * What of a message body is searchable, and the index row made from it. Pure: file names are
 * looked up by the caller (FileNames port) and passed in.
 */
import type { SearchDocument } from "../ports"
import { documentVector, type Field } from "./tsearch"

/** The file id of a file message's body, if it is one. */
export function fileIdOf(body: unknown): string | undefined {
  const b = body as { kind?: unknown; file_id?: unknown } | null
  return b?.kind === "file" && typeof b.file_id === "string" ? b.file_id : undefined
}

/**
 * The searchable fields of a body: a text message's text; a file message's caption and file
 * name (the name weighs less in ranking). Unknown kinds have none.
 */
function searchableFields(body: unknown, fileNames: ReadonlyMap<string, string>): Field[] {
  const b = body as { kind?: unknown; text?: unknown; caption?: unknown } | null
  if (b === null || typeof b !== "object") return []
  const fields: Field[] = []
  if (b.kind === "text" && typeof b.text === "string") fields.push({ text: b.text, weight: "A" })
  if (b.kind === "file") {
    if (typeof b.caption === "string") fields.push({ text: b.caption, weight: "A" })
    const name = fileNames.get(fileIdOf(body) ?? "")
    if (name !== undefined) fields.push({ text: name, weight: "B" })
  }
  return fields
}

/** The indexed content and vector of a body; both null when there is nothing to find (recalled). */
export function indexedContent(
  conv: string,
  body: unknown,
  fileNames: ReadonlyMap<string, string>,
): Pick<SearchDocument, "content" | "vector"> {
  const fields = searchableFields(body, fileNames)
  if (fields.length === 0) return { content: null, vector: null }
  return { content: fields.map((f) => f.text).join("\n"), vector: documentVector(conv, fields) }
}
