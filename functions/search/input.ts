import { z } from "zod"
import { safeId } from "../../lib/protocol/ids"

/** `GET /function/search?q=&conv=&from=&after=&before=&limit=&cursor=` (docs/search.md). */
export const searchQuery = z.object({
  // Emptiness and length are checked by the handler, with their own error codes.
  q: z.string().default(""),
  conv: safeId.optional(),
  from: safeId.optional(),
  after: z.iso.datetime({ offset: true }).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(512).optional(),
})
export type SearchInput = z.output<typeof searchQuery>
