/**
 * Search cursors: which part of the results the page is in (all, a window of recent months, or
 * the months before it), the position of the last hit there (rank, time, conversation, seq,
 * exactly as stored), and a digest of the search it belongs to, base64url-encoded. A cursor is
 * validated, not signed: it only says where to resume inside results the caller may see anyway
 * (membership is checked on every page), and one made for another search is refused.
 */
import { createHash } from "node:crypto"
import { z } from "zod"
import { AppError } from "../../lib/errors"
import type { SearchCursor } from "../../lib/ports"
import { safeId } from "../../lib/protocol/ids"

/** All hits; the hits of the months from `from` on; the hits sent before month `before`. */
export type Tier =
  | { readonly kind: "all" }
  | { readonly kind: "window"; readonly from: string }
  | { readonly kind: "rest"; readonly before: string }

const month = z.string().regex(/^(19|20)\d\d(0[1-9]|1[0-2])$/)
const tier = z.union([
  z.tuple([z.literal("a")]).transform((): Tier => ({ kind: "all" })),
  z.tuple([z.literal("w"), month]).transform(([, from]): Tier => ({ kind: "window", from })),
  z.tuple([z.literal("r"), month]).transform(([, before]): Tier => ({ kind: "rest", before })),
])
const REAL_MAX = 3.4028234663852886e38
/** A rank as PostgreSQL prints a `real`: a finite number within its range. */
const rank = z
  .string()
  .regex(/^-?\d+(\.\d+)?(e[+-]?\d+)?$/)
  .refine((v) => Math.abs(Number(v)) <= REAL_MAX)

const STORED_TS = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d{1,6})?[+-](\d\d)(:(\d\d))?$/

/**
 * A time as PostgreSQL prints a `timestamptz`, and a real one: a cursor naming the 13th month
 * or the 30th of February must be refused here, not reach the database as a failing cast.
 */
function isStoredTime(v: string): boolean {
  const m = STORED_TS.exec(v)
  if (m === null) return false
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 8, 10].map(
    (i) => Number(m[i] ?? "0"),
  ) as [number, number, number, number, number, number, number, number]
  const date = new Date(Date.UTC(year, month - 1, day))
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHours <= 15 &&
    offsetMinutes <= 59
  )
}

const position = z
  .tuple([rank, z.string().refine(isStoredTime), safeId, z.number().int().positive()])
  .nullable()
const encoded = z.tuple([tier, position, z.string()])

export type Resume = { readonly tier: Tier; readonly position: SearchCursor | undefined }

export function searchDigest(parts: readonly (string | undefined)[]): string {
  return createHash("sha256").update(JSON.stringify(parts)).digest("base64url").slice(0, 16)
}

function tierValue(t: Tier): string[] {
  return t.kind === "all" ? ["a"] : t.kind === "window" ? ["w", t.from] : ["r", t.before]
}

export function encodeCursor(resume: Resume, digest: string): string {
  const p = resume.position
  const value = [tierValue(resume.tier), p === undefined ? null : [p.rank, p.ts, p.conv, p.seq], digest]
  return Buffer.from(JSON.stringify(value)).toString("base64url")
}

export function decodeCursor(cursor: string, digest: string): Resume {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
  } catch (err) {
    throw new AppError("SEARCH_CURSOR_INVALID", undefined, { cause: err })
  }
  const parsed = encoded.safeParse(value)
  if (!parsed.success || parsed.data[2] !== digest) throw new AppError("SEARCH_CURSOR_INVALID")
  const [t, p] = parsed.data
  return { tier: t, position: p === null ? undefined : { rank: p[0], ts: p[1], conv: p[2], seq: p[3] } }
}
