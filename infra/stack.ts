/**
 * Reads stack.yml, the OpenFaaS description of Cove's functions, into typed specs for the local
 * runtime, the connector and the build. Every problem is reported at once with its path.
 */
import { readFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { parse } from "yaml"
import { z } from "zod"
import { parseBytes, parseDurationMs } from "../lib/units"

/** How the connector feeds an event function from JetStream (from the function's annotations). */
export type TopicSpec = {
  /** Base subject; partition p is `<subject>.<p>`. */
  readonly subject: string
  readonly stream: string
  readonly partitions: number
  readonly batchSize: number
  /**
   * How long a worker holding fewer than batchSize messages waits for more before it POSTs:
   * 0 for latency (the sequencer), more for followers whose cost is mostly per batch (search).
   */
  readonly batchWaitMs: number
  /** Attempts before a message goes to the dead-letter subject. */
  readonly maxDeliver: number
  readonly ackWaitMs: number
  /** Delay before each retry of a failed batch; the last value repeats. */
  readonly backoffMs: readonly number[]
  readonly maxAgeMs: number
  readonly replicas: number
}

export type FunctionSpec = {
  readonly name: string
  readonly image: string
  /** Folder holding handler.js and package.json, as the node20 template expects. */
  readonly handlerDir: string
  readonly environment: Readonly<Record<string, string>>
  readonly secrets: readonly string[]
  readonly execTimeoutMs: number
  readonly maxBodyBytes: number
  readonly topic: TopicSpec | undefined
}

export type Stack = { readonly file: string; readonly functions: readonly FunctionSpec[] }

export class StackFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file} is not valid:\n${problems.map((p) => `  - ${p}`).join("\n")}`)
    this.name = "StackFileError"
  }
}

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform(String)
const name = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and -")
const subject = z
  .string()
  .regex(/^[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*$/, "must be a NATS subject without wildcards")
const streamName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be letters, digits, _ and -")

const duration = (label: string) =>
  z.string().transform((v, ctx) => {
    const ms = parseDurationMs(v)
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({ code: "custom", message: `${label} must be a duration such as 500ms, 10s or 1m` })
      return z.NEVER
    }
    return ms
  })

const intIn = (min: number, max: number) =>
  z.coerce
    .number()
    .int(`must be a whole number`)
    .min(min, `must be ${min} to ${max}`)
    .max(max, `must be ${min} to ${max}`)

const annotationsSchema = z
  .object({
    topic: subject,
    "com.cove.stream": streamName,
    "com.cove.partitions": intIn(1, 256).default(1),
    "com.cove.batch-size": intIn(1, 10_000).default(100),
    "com.cove.batch-wait": z
      .string()
      .transform((v, ctx) => {
        const ms = parseDurationMs(v)
        if (ms === undefined || ms > 60_000) {
          ctx.addIssue({ code: "custom", message: "must be a duration of at most 1m, such as 0ms or 200ms" })
          return z.NEVER
        }
        return ms
      })
      .default(0),
    "com.cove.max-deliver": intIn(1, 100).default(5),
    "com.cove.ack-wait": duration("com.cove.ack-wait").default(30_000),
    "com.cove.retry-backoff": z
      .string()
      .transform((v, ctx) => {
        const values = v.split(",").map((s) => parseDurationMs(s))
        if (values.some((x) => x === undefined)) {
          ctx.addIssue({ code: "custom", message: "must be durations separated by commas, e.g. 200ms,1s,5s" })
          return z.NEVER
        }
        return values as number[]
      })
      .default([200, 1000, 5000]),
    "com.cove.stream-max-age": duration("com.cove.stream-max-age").default(7 * 24 * 3_600_000),
    "com.cove.stream-replicas": intIn(1, 5).default(1),
  })
  .loose()

const functionSchema = z.object({
  lang: z.string(),
  handler: z.string().min(1),
  image: z.string().min(1),
  environment: z.record(z.string(), scalar).default({}),
  secrets: z
    .array(z.string().regex(/^[a-z0-9-]+$/, "secret names are lowercase letters, digits and -"))
    .default([]),
  annotations: z.record(z.string(), scalar).optional(),
  labels: z.record(z.string(), scalar).optional(),
})

const stackSchema = z.object({
  version: scalar,
  provider: z.object({
    name: z.literal("openfaas", "provider.name must be openfaas"),
    gateway: z.string().optional(),
  }),
  functions: z
    .record(name, functionSchema)
    .refine((f) => Object.keys(f).length > 0, "must list at least one function"),
})

export function loadStack(file: string): Stack {
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (err) {
    throw new StackFileError(file, [`cannot be read: ${(err as Error).message}`])
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    throw new StackFileError(file, [`is not valid YAML: ${(err as Error).message}`])
  }
  return parseStack(file, doc)
}

export function parseStack(file: string, doc: unknown): Stack {
  const parsed = stackSchema.safeParse(doc)
  if (!parsed.success)
    throw new StackFileError(
      file,
      parsed.error.issues.map((i) => describeIssue(i)),
    )
  const problems: string[] = []
  const root = dirname(resolve(file))
  const functions: FunctionSpec[] = []
  for (const [fnName, fn] of Object.entries(parsed.data.functions)) {
    const at = `functions.${fnName}`
    const execTimeoutMs = parseDurationMs(fn.environment.exec_timeout ?? "10s")
    if (execTimeoutMs === undefined)
      problems.push(`${at}.environment.exec_timeout: must be a duration such as 10s`)
    // The node20 template's default JSON limit is body-parser's 100kb.
    const maxBodyBytes = parseBytes(fn.environment.MAX_JSON_SIZE ?? "100kb")
    if (maxBodyBytes === undefined)
      problems.push(`${at}.environment.MAX_JSON_SIZE: must be a size such as 100kb or 1mb`)
    let topic: TopicSpec | undefined
    if (fn.annotations?.topic !== undefined) {
      const a = annotationsSchema.safeParse(fn.annotations)
      if (!a.success) problems.push(...a.error.issues.map((i) => describeIssue(i, `${at}.annotations`)))
      else {
        topic = {
          subject: a.data.topic,
          stream: a.data["com.cove.stream"],
          partitions: a.data["com.cove.partitions"],
          batchSize: a.data["com.cove.batch-size"],
          batchWaitMs: a.data["com.cove.batch-wait"],
          maxDeliver: a.data["com.cove.max-deliver"],
          ackWaitMs: a.data["com.cove.ack-wait"],
          backoffMs: a.data["com.cove.retry-backoff"],
          maxAgeMs: a.data["com.cove.stream-max-age"],
          replicas: a.data["com.cove.stream-replicas"],
        }
      }
    }
    functions.push({
      name: fnName,
      image: fn.image,
      handlerDir: resolve(root, fn.handler),
      environment: fn.environment,
      secrets: fn.secrets,
      execTimeoutMs: execTimeoutMs ?? 0,
      maxBodyBytes: maxBodyBytes ?? 0,
      topic,
    })
  }
  // Several functions may consume one stream (each with its own consumers), but they must agree
  // on what the stream holds.
  const streams = new Map<string, FunctionSpec & { topic: TopicSpec }>()
  for (const fn of functions) {
    if (fn.topic === undefined) continue
    const other = streams.get(fn.topic.stream)
    if (
      other !== undefined &&
      (other.topic.subject !== fn.topic.subject || other.topic.partitions !== fn.topic.partitions)
    ) {
      problems.push(
        `functions.${fn.name}.annotations: stream ${fn.topic.stream} is declared by ${other.name} with another topic or partition count`,
      )
    }
    streams.set(fn.topic.stream, { ...fn, topic: fn.topic })
  }
  if (problems.length > 0) throw new StackFileError(file, problems)
  return { file, functions }
}

function describeIssue(issue: z.core.$ZodIssue, prefix?: string): string {
  const path = [prefix, ...issue.path.map(String)].filter((p) => p !== undefined).join(".")
  return `${path === "" ? "(top level)" : path}: ${issue.message}`
}
