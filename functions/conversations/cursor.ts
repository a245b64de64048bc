/**
 * Cursors of the conversation list: the position of a page's last conversation (its activity
 * time in microseconds, exactly as stored, and its id) as base64url JSON. Clients treat them as
 * opaque. A cursor is validated, not signed: it only says where to resume in the caller's own
 * list, which is filtered by membership on every page.
 */
import { z } from "zod"
import type { ConversationPosition } from "../../lib/ports"
import { safeId } from "../../lib/protocol/ids"

const position = z.tuple([z.number().int(), safeId])

export function encodeCursor(p: ConversationPosition): string {
  return Buffer.from(JSON.stringify([p.activeMicros, p.id])).toString("base64url")
}

/** undefined for anything that encodeCursor did not make. */
export function decodeCursor(cursor: string): ConversationPosition | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
  } catch {
    // Not JSON: not one of ours, which the caller reports as invalid input.
    return undefined
  }
  const parsed = position.safeParse(value)
  if (!parsed.success) return undefined
  const [activeMicros, id] = parsed.data
  return { activeMicros, id }
}
