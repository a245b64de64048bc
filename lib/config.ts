/**
 * The only reader of process.env and of secret files. Each process declares the settings it
 * needs as a table (name, schema, description); `loadConfig` checks all of them at once and
 * reports every bad value in one ConfigError that names each variable.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { z } from "zod"

export type Env = Readonly<Record<string, string | undefined>>

/** Where settings come from: the environment, and the folder of secret files. */
export type ConfigSource = { readonly env: Env; readonly secretsDir: string }

/** OpenFaaS mounts each secret a function lists in stack.yml as a file in this folder. */
export const DEFAULT_SECRETS_DIR = "/var/openfaas/secrets"

export function processSource(): ConfigSource {
  return { env: process.env, secretsDir: process.env.COVE_SECRETS_DIR ?? DEFAULT_SECRETS_DIR }
}

type AnySchema = z.ZodType<unknown, unknown>

/** A plain setting, read from the environment variable `env`. */
export type Setting<S extends AnySchema = AnySchema> = {
  readonly kind: "setting"
  readonly env: string
  readonly schema: S
  readonly description: string
}

/**
 * A credential: read from the secret file `file` (production), or from the environment variable
 * `env` (development and tests). Never has a default.
 */
export type Secret = {
  readonly kind: "secret"
  readonly file: string
  readonly env: string
  readonly required: boolean
  readonly description: string
}

export type Field = Setting | Secret
export type Fields = Readonly<Record<string, Field>>

export type ConfigOf<F extends Fields> = {
  readonly [K in keyof F]: F[K] extends Setting<infer S>
    ? z.output<S>
    : F[K] extends Secret
      ? F[K]["required"] extends true
        ? string
        : string | undefined
      : never
}

export function setting<S extends AnySchema>(env: string, schema: S, description: string): Setting<S> {
  return { kind: "setting", env, schema, description }
}

export function secret<R extends boolean>(
  file: string,
  env: string,
  required: R,
  description: string,
): Secret & { required: R } {
  return { kind: "secret", file, env, required, description }
}

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`)
    this.name = "ConfigError"
    this.problems = problems
  }
}

function readSecretFile(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), "utf8").trim()
  } catch (err) {
    // A secret that is not mounted is the normal case in development; the env fallback applies.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw err
  }
}

export function loadConfig<F extends Fields>(fields: F, source: ConfigSource): ConfigOf<F> {
  const problems: string[] = []
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(fields)) {
    if (field.kind === "secret") {
      const value = readSecretFile(source.secretsDir, field.file) ?? emptyToUndefined(source.env[field.env])
      if (value === undefined && field.required) {
        problems.push(
          `${field.env}: missing (${field.description}); set it, or mount the secret file ${join(source.secretsDir, field.file)}`,
        )
      }
      out[key] = value
      continue
    }
    const raw = emptyToUndefined(source.env[field.env])
    const parsed = field.schema.safeParse(raw)
    if (parsed.success) out[key] = parsed.data
    else {
      const reason = parsed.error.issues.map((i) => i.message).join("; ")
      problems.push(
        `${field.env}=${raw === undefined ? "(unset)" : JSON.stringify(raw)}: ${reason} (${field.description})`,
      )
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(out) as ConfigOf<F>
}

/**
 * The variables whose names start with one of `prefixes`, unchecked: for a process that starts
 * another (npm start starting the edge) and hands its settings on; the child checks them.
 */
export function passThrough(source: ConfigSource, prefixes: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(source.env)) {
    if (value !== undefined && prefixes.some((p) => name.startsWith(p))) out[name] = value
  }
  return out
}

/** The config with every secret replaced, for the start-up log line. */
export function redacted<F extends Fields>(fields: F, config: ConfigOf<F>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(fields)) {
    const value = (config as Record<string, unknown>)[key]
    out[key] = field.kind === "secret" ? (value === undefined ? undefined : "[redacted]") : value
  }
  return out
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value
}

// ---- Reusable schemas ----------------------------------------------------------------------

export const port = (fallback: number) =>
  z.coerce
    .number({ message: "must be a port number" })
    .int("must be a whole number")
    .min(0, "must be 0 (any free port) to 65535")
    .max(65535, "must be 0 (any free port) to 65535")
    .default(fallback)

export const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ message: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(max, `must be at most ${max}`)
    .default(fallback)

export const logLevel = z
  .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
    message: "must be one of fatal, error, warn, info, debug, trace, silent",
  })
  .default("info")

export const url = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol)
      } catch {
        // Not a URL at all: report it as the same validation failure.
        return false
      }
    },
    `must be a URL starting with ${protocols.join(" or ")}//`,
  )

/** Identifiers that end up in SQL, subjects or bucket names: a conservative alphabet. */
export const identifier = (fallback: string) =>
  z
    .string()
    .regex(
      /^[a-z][a-z0-9_]{0,39}$/,
      "must be lowercase letters, digits and _, starting with a letter (max 40)",
    )
    .default(fallback)

export const bool = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0"], { message: "must be true or false" })
    .transform((v) => v === "true" || v === "1")
    .default(fallback)
