/**
 * Login hash time at the configured scrypt parameters (AUTH_SCRYPT_N/R/P, defaults from
 * lib/settings.ts): median and p90 of one verify, then logins/s with AUTH_HASH_CONCURRENCY hashes
 * in parallel. A script for the issue note, not a test: `npx tsx bench/auth-hash.ts [runs]`.
 */
import { availableParallelism } from "node:os"
import { createPasswordHasher } from "../functions/auth/passwords"
import { loadConfig, processSource } from "../lib/config"
import { authFields } from "../lib/settings"

const config = loadConfig(
  {
    scryptN: authFields.scryptN,
    scryptR: authFields.scryptR,
    scryptP: authFields.scryptP,
    hashConcurrency: authFields.hashConcurrency,
  },
  processSource(),
)
const runs = Number(process.argv[2] ?? "21")
const params = { N: config.scryptN, r: config.scryptR, p: config.scryptP }
const hasher = createPasswordHasher({ params, concurrency: config.hashConcurrency, queueMax: 10_000 })
const stored = await hasher.hash("correct horse battery staple")

const times: number[] = []
for (let i = 0; i < runs; i++) {
  const started = performance.now()
  await hasher.verify(i % 2 === 0 ? "correct horse battery staple" : "wrong password", stored)
  times.push(performance.now() - started)
}
times.sort((a, b) => a - b)
const at = (q: number) =>
  (times[Math.min(times.length - 1, Math.floor(q * times.length))] as number).toFixed(1)

const parallel = runs * 2
const started = performance.now()
await Promise.all(Array.from({ length: parallel }, () => hasher.verify("wrong password", stored)))
const rate = parallel / ((performance.now() - started) / 1000)

process.stdout.write(
  `${[
    `scrypt N=${params.N} r=${params.r} p=${params.p} (memory ${(128 * params.N * params.r) / 2 ** 20} MiB per hash)`,
    `one login hash: median ${at(0.5)} ms, p90 ${at(0.9)} ms, min ${times[0]?.toFixed(1)} ms over ${runs} runs`,
    `${config.hashConcurrency} at once on ${availableParallelism()} cores: ${rate.toFixed(1)} logins/s`,
  ].join("\n")}\n`,
)
