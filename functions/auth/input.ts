import { z } from "zod"
import { parseUsername, usernameKey } from "./usernames"

/** Passwords are any text of 8-1024 characters; the upper bound caps hashing input. */
const password = z
  .string()
  .min(8, "must be at least 8 characters")
  .max(1024, "must be at most 1024 characters")

/** A name to create: must follow the username rules; becomes its display and key forms. */
const newUsername = z
  .string()
  .max(256, "must be at most 32 characters")
  .transform((raw, ctx) => {
    const parsed = parseUsername(raw)
    if ("problem" in parsed) {
      ctx.addIssue({ code: "custom", message: parsed.problem })
      return z.NEVER
    }
    return parsed
  })

export const registerInput = z.object({ username: newUsername, password })
export type RegisterInput = z.output<typeof registerInput>

/**
 * A name to log in with is only folded, not checked against today's rules: a name that breaks
 * them cannot exist, and it gets the same AUTH_INVALID_CREDENTIALS as any unknown name.
 */
export const loginInput = z.object({
  username: z.string().min(1, "is required").max(256, "must be at most 32 characters").transform(usernameKey),
  password: z.string().min(1, "is required").max(1024, "must be at most 1024 characters"),
})
export type LoginInput = z.output<typeof loginInput>

const refreshToken = z
  .string()
  .min(16, "is not a refresh token")
  .max(256, "is not a refresh token")
  .regex(/^[A-Za-z0-9_-]+$/, "is not a refresh token")

export const refreshInput = z.object({ refresh_token: refreshToken })
export type RefreshInput = z.output<typeof refreshInput>

export const logoutInput = z.object({
  refresh_token: refreshToken,
  everywhere: z.boolean().default(false),
})
export type LogoutInput = z.output<typeof logoutInput>

/** A directory lookup: the start of a name, folded like usernames, and how many to answer. */
export const directoryQuery = z.object({
  q: z.string().min(1, "is required").max(64, "must be at most 64 characters").transform(usernameKey),
  limit: z.coerce.number().int().min(1).max(50).default(20),
})
export type DirectoryQuery = z.output<typeof directoryQuery>

export const userIdParam = z.object({ id: z.uuid({ message: "must be a user id (UUID)" }) })
