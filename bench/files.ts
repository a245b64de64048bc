/**
 * Files: upload and download throughput of one 100 MB file through presigned URLs (what Cove's
 * clients do) against a direct SDK put/get of the same bytes in the same run (the baseline), on
 * the embedded store (s3rver) and, when Ceph is installed, on Ceph RGW. Also the cost of
 * complete's SHA-256 check, which reads the object back once. Presigned URLs are sent both with
 * fetch (what browsers and most apps use) and with node:http (the SDK's own client stack).
 * `npx tsx bench/files.ts [megabytes=100] [runs=3]`.
 */
import { createHash, randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import type { Test } from "tap"
import { startS3 } from "../infra/local/s3-server"
import { createS3Client, ensureBucket } from "../lib/adapters/s3"
import { s3ObjectStore } from "../lib/adapters/s3-objects"
import { withRgw } from "../test/support/ceph"

const megabytes = Number(process.argv[2] ?? "100")
const runs = Number(process.argv[3] ?? "3")
const size = megabytes * 1_000_000
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
const mbps = (ms: number) => size / 1_000_000 / (ms / 1000)

async function time(fn: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await fn()
  return performance.now() - started
}

/** The same presigned URL sent with node:http, the client stack the SDK uses, to separate fetch's cost. */
function httpSend(
  method: "PUT" | "GET",
  url: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers: body === undefined ? headers : { ...headers, "content-length": String(body.length) },
      },
      (res) => {
        let received = 0
        res.on("data", (chunk: Buffer) => {
          received += chunk.length
        })
        res.on("end", () =>
          res.statusCode === 200 ? resolve(received) : reject(new Error(`${method}: ${res.statusCode}`)),
        )
        res.on("error", reject)
      },
    )
    req.on("error", reject)
    req.end(body)
  })
}

type Row = { store: string; what: string; ms: number }

async function measure(store: string, s3: S3Client, payload: Buffer, digest: string): Promise<Row[]> {
  const bucket = "cove-bench"
  await ensureBucket(s3, bucket, [])
  const objects = s3ObjectStore(s3, bucket)
  const times: Record<string, number[]> = {}
  const add = (what: string, ms: number) => {
    times[what] ??= []
    times[what].push(ms)
  }
  for (let i = 0; i < runs; i++) {
    const key = `bench/${i}`
    add(
      "direct SDK put",
      await time(async () => {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `${key}-sdk`,
            Body: payload,
            ContentType: "application/octet-stream",
          }),
        )
      }),
    )
    add(
      "presigned PUT",
      await time(async () => {
        const up = await objects.presignPut(key, {
          size,
          contentType: "application/octet-stream",
          ttlSeconds: 300,
        })
        const res = await fetch(up.url, { method: "PUT", headers: { ...up.headers }, body: payload })
        if (!res.ok) throw new Error(`presigned PUT: ${res.status}`)
      }),
    )
    add(
      "presigned PUT, node:http",
      await time(async () => {
        const up = await objects.presignPut(`${key}-http`, {
          size,
          contentType: "application/octet-stream",
          ttlSeconds: 300,
        })
        await httpSend("PUT", up.url, { ...up.headers }, payload)
      }),
    )
    add(
      "direct SDK get",
      await time(async () => {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${key}-sdk` }))
        const bytes = await out.Body?.transformToByteArray()
        if (bytes?.length !== size) throw new Error("short SDK read")
      }),
    )
    add(
      "presigned GET",
      await time(async () => {
        const url = await objects.presignGet(key, {
          fileName: "bench.bin",
          contentType: "application/octet-stream",
          ttlSeconds: 300,
        })
        const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer())
        if (bytes.length !== size) throw new Error("short presigned read")
      }),
    )
    add(
      "presigned GET, node:http",
      await time(async () => {
        const url = await objects.presignGet(key, {
          fileName: "bench.bin",
          contentType: "application/octet-stream",
          ttlSeconds: 300,
        })
        if ((await httpSend("GET", url, {})) !== size) throw new Error("short presigned read")
      }),
    )
    add(
      "complete's check (HEAD + SHA-256 read-back)",
      await time(async () => {
        const head = await objects.head(key)
        if (head?.size !== size || (await objects.sha256(key)) !== digest) throw new Error("check failed")
      }),
    )
    await objects.remove([key, `${key}-sdk`, `${key}-http`])
  }
  return Object.entries(times).map(([what, ms]) => ({ store, what, ms: median(ms) }))
}

const payload = randomBytes(size)
const digest = createHash("sha256").update(payload).digest("hex")
const rows: Row[] = []
const downs: Array<() => Promise<void>> = []
try {
  const dir = await mkdtemp(join(tmpdir(), "cove-bench-s3-"))
  downs.push(() => rm(dir, { recursive: true, force: true }))
  const embedded = await startS3({ port: 0, directory: dir })
  downs.push(() => embedded.stop())
  const s3rver = createS3Client({
    endpoint: embedded.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
  })
  rows.push(...(await measure("s3rver", s3rver, payload, digest)))
  s3rver.destroy()
  // withRgw wants a tap test for its teardown; this script keeps the list itself.
  const rgw = await withRgw({
    teardown: (fn: () => Promise<void>) => downs.push(fn),
  } as unknown as Test).catch((err: unknown) => {
    process.stdout.write(`Ceph RGW not measured: ${(err as Error).message.split("\n")[0]}\n`)
    return undefined
  })
  if (rgw !== undefined) {
    const client = createS3Client({
      endpoint: rgw.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      ...rgw.credentials,
    })
    rows.push(...(await measure("Ceph RGW", client, payload, digest)))
    client.destroy()
  }
} finally {
  for (const down of downs.reverse()) await down()
}

process.stdout.write(
  `\n${megabytes} MB, median of ${runs}\n\n| store | what | time | MB/s | × direct SDK |\n|---|---|---|---|---|\n`,
)
for (const r of rows) {
  const base = r.what.startsWith("presigned")
    ? rows.find(
        (b) =>
          b.store === r.store && b.what === (r.what.endsWith("PUT") ? "direct SDK put" : "direct SDK get"),
      )
    : undefined
  const ratio = base === undefined ? "" : (base.ms / r.ms).toFixed(2)
  process.stdout.write(
    `| ${r.store} | ${r.what} | ${Math.round(r.ms)} ms | ${mbps(r.ms).toFixed(0)} | ${ratio} |\n`,
  )
}
