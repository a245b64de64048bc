import { z } from "zod"
import { decodeCursor } from "./cursor"

const userId = z.uuid({ message: "must be a user id" }).transform((v) => v.toLowerCase())
const title = z
  .string()
  .transform((t) => t.normalize("NFC").trim())
  .pipe(z.string().min(1, "must not be empty").max(200, "must be at most 200 characters"))

export function createInput(maxMembers: number) {
  return z.discriminatedUnion("kind", [
    z.object({
      kind: z.literal("direct"),
      members: z.array(userId).length(1, "a direct conversation has exactly one other member"),
    }),
    z.object({
      kind: z.literal("group"),
      title,
      members: z
        .array(userId)
        .max(maxMembers - 1, `a group has at most ${maxMembers} members`)
        .default([]),
    }),
  ])
}
export type CreateInput = z.output<ReturnType<typeof createInput>>

export const addMembersInput = z.object({ members: z.array(userId).min(1).max(1000) })
export const renameInput = z.object({ title })
export const setRoleInput = z.object({ role: z.enum(["admin", "member"]) })
export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** `next_cursor` of the previous page. */
  cursor: z
    .string()
    .transform((raw, ctx) => {
      const position = decodeCursor(raw)
      if (position === undefined) {
        ctx.addIssue({ code: "custom", message: "must be a next_cursor from an earlier page" })
        return z.NEVER
      }
      return position
    })
    .optional(),
  /** `ids`: every conversation id of the caller, no details (what an edge needs at connect). */
  view: z.enum(["summary", "ids"]).default("summary"),
})
export const membersQuery = z.object({
  after: userId.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
})
export const conversationParam = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a conversation id")
export const userParam = userId
