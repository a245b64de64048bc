import type { z } from "zod"
import { AppError } from "../errors"

/** Validates what a function received; the error names every bad field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const fields = result.error.issues.map((issue) => ({
    field: issue.path.length === 0 ? "(body)" : issue.path.join("."),
    problem: issue.message,
  }))
  const summary = fields.map((f) => `${f.field}: ${f.problem}`).join("; ")
  throw new AppError("INVALID_INPUT", summary, { details: { fields } })
}
